#!/usr/bin/env python3
"""Start-up benchmark: a Lambda function binary from exec to its first GET .../invocation/next, i.e. ready
for its first event. A stub Runtime API on localhost answers nothing useful; the binary is killed once it
asks. Usage: python3 scripts/bench-startup.py $CARGO_TARGET_DIR/release/mogr-download [...]"""
import http.server, socketserver, subprocess, sys, time, threading, os
results = []
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        results.append(time.perf_counter())
        self.send_response(500); self.end_headers()
    def log_message(self, *a): pass
srv = socketserver.TCPServer(("127.0.0.1", 0), H)
port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", MOGR_BUCKET="b", AWS_REGION="us-east-1",
           AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_LAMBDA_FUNCTION_NAME="f",
           AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024", AWS_LAMBDA_FUNCTION_VERSION="1",
           AWS_LAMBDA_LOG_STREAM_NAME="s", AWS_LAMBDA_LOG_GROUP_NAME="g", AWS_EC2_METADATA_DISABLED="true")
def measure(binary):
  times = []
  for i in range(7):
    results.clear()
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not results and time.perf_counter() - t0 < 10: time.sleep(0.0005)
    if results: times.append((results[0] - t0) * 1000)
    p.kill(); p.wait()
  if not times:
    sys.exit(f"{binary} never asked for an event")
  print(f"{os.path.basename(binary)}: exec -> first invocation/next: min {min(times):.1f} ms, median {sorted(times)[len(times)//2]:.1f} ms ({len(times)} runs)")

for b in sys.argv[1:]:
  measure(b)
