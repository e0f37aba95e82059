"""A scripted OpenAI-compatible chat-completions server running in a thread, for tests.

`server.respond(body, i) -> (status, payload)` scripts the reply to the i-th request;
`server.requests` holds what the server received (headers and JSON body).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer:
    """Records requests; `respond(body, i)` scripts the reply to the i-th one."""

    def __init__(self):
        self.requests: list[tuple[dict, dict]] = []
        self.respond = lambda body, i: ok("")
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                stub.requests.append((dict(self.headers), body))
                status, payload = stub.respond(body, len(stub.requests) - 1)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(content: str):
    return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
