"""A stub OpenAI chat-completions server for tests/eval/eval_endpoint.sh, on 127.0.0.1 only, that answers the
built-in sample set (data/samples) with canned responses and checks what gemma4c eval sends: a base64 data: URL
of a known image before the prompt text, temperature 0, the benchmark's max_tokens, the model from /v1/models, the
API key. It fails the first completion with 503 (the client must retry), sends every other answer chunked, and
stops by itself after --lifetime seconds. usage: stub_openai.py SAMPLES_DIR PORT_FILE [--api-key K]"""
import base64
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

samples, port_file = sys.argv[1], sys.argv[2]
api_key = sys.argv[sys.argv.index("--api-key") + 1] if "--api-key" in sys.argv else None
lifetime = float(sys.argv[sys.argv.index("--lifetime") + 1]) if "--lifetime" in sys.argv else 120

images = {}  # sha256 -> file name
for name in os.listdir(os.path.join(samples, "images")):
    with open(os.path.join(samples, "images", name), "rb") as f:
        images[hashlib.sha256(f.read()).hexdigest()] = name

answers = {}  # question -> canned answer: the majority answer, except two
for line in open(os.path.join(samples, "vqa.jsonl")):
    r = json.loads(line)
    answers[r["question"]] = r["answer"]
answers["How many spoons are there?"] = "One"   # strict 0 ("one" != "1"), official 1
answers["Is this photo in color?"] = "No."      # strict 1 (one trailing '.' dropped)

boxes = {}  # image name -> canned COCO response: the ground truth, y-first in 0..1000
for line in open(os.path.join(samples, "coco.jsonl")):
    r = json.loads(line)
    w, h = r["width"], r["height"]
    out = [{"label": b["label"], "box_2d": [b["bbox"][1] / h * 1000, b["bbox"][0] / w * 1000,
                                            (b["bbox"][1] + b["bbox"][3]) / h * 1000,
                                            (b["bbox"][0] + b["bbox"][2]) / w * 1000]} for b in r["boxes"]]
    if r["image"].endswith("grace_hopper.jpg"):
        out.append({"label": "dog", "box_2d": [0, 0, 100, 100]})  # a false positive
    boxes[os.path.basename(r["image"])] = "```json\n" + json.dumps(out) + "\n```"

state = {"completions": 0}
lock = threading.Lock()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj, chunked=False):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.close_connection = True

    def bad(self, msg, code=400):
        self.reply(code, {"error": {"message": msg, "type": "invalid_request_error"}})

    def authorized(self):
        if api_key and self.headers.get("Authorization") != "Bearer " + api_key:
            self.bad("bad api key", 401)
            return False
        return True

    def do_GET(self):
        if self.path != "/v1/models":
            return self.bad("no such path " + self.path, 404)
        if self.authorized():
            self.reply(200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            return self.bad("no such path " + self.path, 404)
        if not self.authorized():
            return
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with lock:
            state["completions"] += 1
            n = state["completions"]
        if n == 1:
            return self.bad("warming up", 503)
        if req.get("model") != "stub-model":
            return self.bad("model must be stub-model, got %r" % req.get("model"))
        if req.get("temperature") != 0:
            return self.bad("temperature must be 0")
        content = req["messages"][0]["content"]
        if content[0]["type"] != "image_url" or content[1]["type"] != "text":
            return self.bad("want the image, then the text")
        url = content[0]["image_url"]["url"]
        head, data = url.split(",", 1)
        if not head.startswith("data:image/") or not head.endswith(";base64"):
            return self.bad("not a base64 image data URL: " + head)
        name = images.get(hashlib.sha256(base64.b64decode(data, validate=True)).hexdigest())
        if name is None:
            return self.bad("unknown image")
        text = content[1]["text"]
        if "\nQuestion: " in text:
            if req.get("max_tokens") != 20:
                return self.bad("VQA max_tokens must be 20")
            q = text.split("\nQuestion: ", 1)[1].rsplit("\nAnswer:", 1)[0]
            answer = answers.get(q, "?")
        else:
            if req.get("max_tokens") != 1024 or "box_2d" not in text:
                return self.bad("COCO prompt or max_tokens")
            answer = boxes.get(name, "[]")
        self.reply(200, {"id": "x", "object": "chat.completion", "model": "stub-model",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 300, "completion_tokens": 5, "total_tokens": 305}},
                   chunked=n % 2 == 0)


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
threading.Timer(lifetime, srv.shutdown).start()
srv.serve_forever()
