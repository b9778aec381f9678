"""A Jupyter client in a page of Python: start a kernel on mcp-jupyter's
Jupyter Server API, run a cell over the channels WebSocket, shut it down.

    apt-get install python3-websocket        # websocket-client, Debian's
    MCPJ_URL=http://127.0.0.1:3000 MCPJ_TOKEN=$(cat .mcp-jupyter/mcp-token) python3 session.py

Any Jupyter Server answers it the same way (jupyter_server too). It speaks
the legacy JSON framing (no subprotocol offered): one JSON object per
WebSocket text message.
"""

import json
import os
import urllib.request
import uuid

import websocket  # python3-websocket (websocket-client)

base = os.environ.get("MCPJ_URL", "http://127.0.0.1:3000").rstrip("/")
token = os.environ["MCPJ_TOKEN"]
auth = {"Authorization": "token " + token}


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={**auth, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        text = resp.read()
        return json.loads(text) if text else None


print("server", api("GET", "/api")["version"])
print("kernelspecs", sorted(api("GET", "/api/kernelspecs")["kernelspecs"]))
kernel = api("POST", "/api/kernels", {"name": "python3"})
print("kernel", kernel["id"])

session = str(uuid.uuid4())
ws = websocket.create_connection(
    base.replace("http", "ws", 1) + "/api/kernels/%s/channels?session_id=%s" % (kernel["id"], session),
    header=["%s: %s" % kv for kv in auth.items()], timeout=60)


def run(code):
    msg_id = str(uuid.uuid4())
    ws.send(json.dumps({
        "channel": "shell",
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                   "username": "me", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {},
        "content": {"code": code, "silent": False, "store_history": True,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))
    out, status, idle = "", None, False
    while status is None or not idle:  # the reply and the idle status, in either order
        msg = json.loads(ws.recv())
        if msg["parent_header"].get("msg_id") != msg_id:
            continue  # someone else's (an agent's, another frontend's)
        kind = msg["header"]["msg_type"]
        if kind == "stream":
            out += msg["content"]["text"]
        elif kind == "execute_result":
            out += msg["content"]["data"]["text/plain"] + "\n"
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
        elif kind == "execute_reply":
            status = msg["content"]["status"]
    return status, out


status, out = run("import sys\nprint(sys.version_info[0])\n6 * 7")
print("execute", status, out.split())
ws.close()
api("DELETE", "/api/kernels/" + kernel["id"])
print("shut down", kernel["id"] not in [k["id"] for k in api("GET", "/api/kernels")])
