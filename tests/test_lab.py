"""`make lab` (tools/lab.py): the same command, started headless, serves the REST API, opens a notebook, runs code."""
import asyncio, json, os, re, socket, subprocess, sys, time, urllib.request, uuid
from pathlib import Path
import pytest
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import lab

NB = '02_lora.ipynb'  # served from nbs/, the lab's root

def test_make_lab_runs_tools_lab():
    "`make lab` runs tools/lab.py (the command tested below), which adds --allow-root exactly when running as root."
    recipe = re.search(r'^lab:.*\n((?:\t.*\n)+)', (ROOT/'Makefile').read_text(), re.M)
    assert recipe and 'tools/lab.py' in recipe[1], 'the Makefile `lab` target must run tools/lab.py'
    argv = lab.lab_argv('--no-browser')
    assert argv[1:3] == ['-m', 'jupyterlab'] and argv[3] == str(ROOT/'nbs') and argv[-1] == '--no-browser'
    assert ('--allow-root' in argv) == (os.geteuid() == 0)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def api(base, token, path, method='GET', body=None):
    "JSON from the server's REST API (token in the Authorization header)."
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={'Authorization': f'token {token}', 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
        return r.status, (json.loads(raw) if raw and 'json' in r.headers.get('Content-Type', '') else raw.decode())

async def execute(ws_url, token, code, timeout=60) -> str:
    "Run `code` in a kernel over its websocket channel; the text/plain of its execute_result."
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect
    ws = await websocket_connect(HTTPRequest(ws_url, headers={'Authorization': f'token {token}'}))
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        'header': {'msg_id': msg_id, 'msg_type': 'execute_request', 'username': 'test', 'session': uuid.uuid4().hex,
                   'version': '5.3', 'date': ''},
        'parent_header': {}, 'metadata': {}, 'channel': 'shell', 'buffers': [],
        'content': {'code': code, 'silent': False, 'store_history': False, 'user_expressions': {},
                    'allow_stdin': False, 'stop_on_error': True}}))
    deadline = time.monotonic() + timeout
    try:
        while True:
            raw = await asyncio.wait_for(ws.read_message(), deadline - time.monotonic())
            assert raw is not None, 'kernel websocket closed before the result'
            msg = json.loads(raw)
            if msg.get('parent_header', {}).get('msg_id') != msg_id: continue
            if msg['msg_type'] == 'error': raise AssertionError('\n'.join(msg['content']['traceback']))
            if msg['msg_type'] == 'execute_result': return msg['content']['data']['text/plain']
    finally: ws.close()

def test_lab_serves_notebooks_and_runs_a_kernel(tmp_path):
    "Start `make lab`'s command headless (free port, token), open a notebook through the API, run 1+1, shut down."
    pytest.importorskip('jupyterlab', reason='JupyterLab is not installed in this venv: `pip install -e ".[lab]"` '
                                             '(`make lab` does it; the dev extra includes it)')
    port, token = free_port(), uuid.uuid4().hex
    base = f'http://127.0.0.1:{port}'
    # a private Jupyter home: no user config, password or kernel spec of this machine changes what is tested
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path/'config'), JUPYTER_DATA_DIR=str(tmp_path/'data'),
               JUPYTER_RUNTIME_DIR=str(tmp_path/'runtime'), IPYTHONDIR=str(tmp_path/'ipython'), BROWSER='true')
    argv = lab.lab_argv('--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
                        '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}')
    log = tmp_path/'lab.log'
    with open(log, 'wb') as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f'jupyter lab exited ({proc.returncode}):\n{log.read_text()}'
            try:
                status, info = api(base, token, '/api/status')
                if status == 200: break
            except OSError: pass
            assert time.monotonic() < deadline, f'no answer from {base}/api/status in 90 s:\n{log.read_text()}'
            time.sleep(0.5)
        assert 'kernels' in info, info

        status, page = api(base, token, '/lab')  # the JupyterLab app itself, not only jupyter_server
        assert status == 200 and 'JupyterLab' in page, page[:500]
        status, root = api(base, token, '/api/contents')
        assert NB in {f['name'] for f in root['content']}, root
        status, nb = api(base, token, f'/api/contents/{NB}?content=1')
        assert nb['type'] == 'notebook' and nb['format'] == 'json', nb['type']
        assert nb['content']['nbformat'] == 4 and any('LoRA' in ''.join(c['source']) for c in nb['content']['cells'])

        # what opening the notebook in the lab does: a session with a kernel for that path
        status, sess = api(base, token, '/api/sessions', 'POST',
                           {'path': NB, 'name': NB, 'type': 'notebook', 'kernel': {'name': 'python3'}})
        assert status == 201, sess
        kid = sess['kernel']['id']
        ws_url = f'ws://127.0.0.1:{port}/api/kernels/{kid}/channels?session_id={uuid.uuid4().hex}'
        assert asyncio.run(execute(ws_url, token, '1+1')) == '2'
        # the kernel is the venv's Python, in nbs/
        where = asyncio.run(execute(ws_url, token, 'import os, sys; (sys.prefix, os.getcwd())'))
        assert where == repr((sys.prefix, str(ROOT/'nbs'))), where
        status, _ = api(base, token, f'/api/sessions/{sess["id"]}', 'DELETE')
        assert status == 204

        status, _ = api(base, token, '/api/shutdown', 'POST', {})
        assert status == 200
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try: proc.wait(timeout=10)
            except subprocess.TimeoutExpired: proc.kill(); proc.wait()
