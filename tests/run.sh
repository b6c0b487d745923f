echo "no integration tests yet"
