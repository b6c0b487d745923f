#!/usr/bin/env python3
"""Real servers journey-relay talks to in tests/journey_relay_test.sh, scripts/demo.sh and
scripts/bench_relay.sh. Each records what it receives, one JSON object a line, in DIR/log.jsonl.

  relay_servers.py smtp    PORT DIR            aiosmtpd; each message also as DIR/<n>.eml. RCPT to
                                               reject*@ answers 550, busy*@ 451 (each time).
  relay_servers.py gateway PORT DIR [DELAY]    an SMS gateway (Twilio Messages API form): 200
                                               {"sid"}; a Body holding [429] answers 429 with
                                               Retry-After: 1 on its first try, [500] 500 on its
                                               first, [400] always 400. DELAY seconds per request.
                                               With a StatusCallback it then posts sent and
                                               delivered there, as Twilio does.
  relay_servers.py webhook PORT DIR SECRET     checks Standard Webhooks signatures: 200 when
                                               right, 401 when not.
Runs until killed.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()


def log(directory, record):
    with lock:
        with open(os.path.join(directory, "log.jsonl"), "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def smtp(port, directory):
    from aiosmtpd.controller import Controller

    counter = [0]

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("reject"):
                return "550 5.1.1 no such user"
            if address.startswith("busy"):
                return "451 4.3.0 try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            with lock:
                counter[0] += 1
                n = counter[0]
            text = envelope.content.decode("utf8", errors="replace")
            with open(os.path.join(directory, f"{n}.eml"), "w") as f:
                f.write(text)
            headers = {}
            for line in text.split("\r\n"):
                if line == "":
                    break
                if ":" in line and not line[0].isspace():
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            log(directory, {"n": n, "mail_from": envelope.mail_from, "rcpt": envelope.rcpt_tos,
                            "from": headers.get("from"), "to": headers.get("to"), "subject": headers.get("subject"),
                            "key": headers.get("x-idempotency-key"), "message_id": headers.get("message-id")})
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    while True:
        time.sleep(3600)


def gateway(port, directory, delay):
    tries = {}
    sids = [0]

    def callbacks(url, sid):
        time.sleep(0.2)
        for status in ("sent", "delivered"):
            data = urllib.parse.urlencode({"MessageSid": sid, "MessageStatus": status}).encode()
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5).read()
            except Exception as e:  # the relay may be gone: the test says what it expects
                log(directory, {"callback_error": str(e), "sid": sid})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the bench measures the relay, not TCP set-up
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            key = self.headers.get("Idempotency-Key")
            if delay:
                time.sleep(delay)
            body = form.get("Body", "")
            with lock:
                tries[key] = tries.get(key, 0) + 1
                n = tries[key]
            status, extra, answer = 200, {}, None
            if "[400]" in body:
                status, answer = 400, {"message": "The 'To' number is not a valid phone number."}
            elif "[429]" in body and n == 1:
                status, extra, answer = 429, {"Retry-After": "1"}, {"message": "Too Many Requests"}
            elif "[500]" in body and n == 1:
                status, answer = 500, {"message": "Internal error"}
            sid = None
            if status == 200:
                with lock:
                    sids[0] += 1
                    sid = f"SM{sids[0]:06d}"
                answer = {"sid": sid, "status": "queued"}
            log(directory, {"path": self.path, "key": key, "to": form.get("To"), "from": form.get("From"),
                            "body": body, "status": status, "sid": sid, "auth": self.headers.get("Authorization"),
                            "callback": form.get("StatusCallback")})
            data = json.dumps(answer).encode()
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if sid and form.get("StatusCallback"):
                threading.Thread(target=callbacks, args=(form["StatusCallback"], sid), daemon=True).start()

    serve(port, Handler)


def webhook(port, directory, secret):
    key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            wid, ts = self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", "")
            mac = hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
            expected = "v1," + base64.b64encode(mac).decode()
            given = (self.headers.get("webhook-signature") or "").split(" ")
            ok = expected in given and abs(time.time() - int(ts or 0)) < 300
            log(directory, {"method": self.command, "path": self.path, "id": wid, "signature_ok": ok,
                            "body": body.decode(), "content_type": self.headers.get("Content-Type")})
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = handle_any

    serve(port, Handler)


def serve(port, handler):
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    kind, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(directory, exist_ok=True)
    if kind == "smtp":
        smtp(port, directory)
    elif kind == "gateway":
        gateway(port, directory, float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
    elif kind == "webhook":
        webhook(port, directory, sys.argv[4])
    else:
        sys.exit(f"unknown server {kind}")
