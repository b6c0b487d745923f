-- Operations: erasure requests (journey.forget_contact).

CREATE FUNCTION journey.forget_contact(contact bigint) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF contact IS NULL THEN
        RAISE EXCEPTION 'forget_contact: contact must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of a row of journey.contacts.';
    END IF;
    -- the row first: a concurrent write of the contact waits for this, or this for it
    PERFORM FROM journey.contacts c WHERE c.id = contact FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- the outbox has no foreign key to contacts (it keeps history); its delivery reports go
    -- with it (ON DELETE CASCADE)
    DELETE FROM journey.outbox o WHERE o.contact_id = contact;
    -- memberships, submissions and events cascade; enrollments (and their steps) and the date
    -- schedule go with the contact through its delete trigger
    DELETE FROM journey.contacts c WHERE c.id = contact;
    RETURN true;
END
$$;
COMMENT ON FUNCTION journey.forget_contact(bigint) IS
  'Erasure: removes the contact and everything about it (group memberships, form submissions, events, enrollments and their steps, date schedule rows, outbox rows and their delivery reports). Returns false when there is no such contact. Stats keep their totals (they read counters).';
