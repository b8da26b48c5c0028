"""A JupyterLab stand-in for the notebook check (the endpoints dlbase's probe uses, with
jupyter_server's token rules), as source to run with any Python: on the host for the
probe's unit test, inside a test image for verify's integration test."""

FAKE_JUPYTER = r'''
"""A JupyterLab stand-in: the endpoints dlbase's probe uses, with jupyter_server's token rules."""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = os.environ.get("JUPYTER_TOKEN", "")
OPEN = os.environ.get("FAKE_JUPYTER_OPEN") == "1"

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def authed(self, url):
        given = parse_qs(url.query).get("token", [""])[0]
        header = self.headers.get("Authorization", "")
        return OPEN or (TOKEN and (given == TOKEN or header == "token " + TOKEN))

    def send(self, code, body, kind="application/json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/api":
            return self.send(200, json.dumps({"version": "0.0-fake"}))
        if not self.authed(url):
            return self.send(403, json.dumps({"message": "Forbidden"}))
        if url.path == "/api/status":
            return self.send(200, json.dumps({"started": "now", "kernels": 0}))
        if url.path == "/lab":
            return self.send(200, "<html><title>JupyterLab</title></html>", "text/html")
        return self.send(404, "{}")

ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8888"))), Handler).serve_forever()
'''
