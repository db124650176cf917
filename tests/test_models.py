"Network and trust in blip2_lora.models: the Hub probe goes the way huggingface_hub goes; weights never run code."
import ast, http.server, pickle, socket, threading, time
from pathlib import Path
import pytest
from huggingface_hub import constants
from huggingface_hub.utils import close_session
import blip2_lora
from blip2_lora.models import Blip2LoraError, hub_available, load_model, load_processor

class _Answer(http.server.BaseHTTPRequestHandler):
    "Answers every request 200 and remembers the request lines (a Hub mirror, or a forward proxy)."
    seen = []
    def do_HEAD(self): _Answer.seen.append(self.requestline); self.send_response(200); self.end_headers()
    do_GET = do_HEAD
    def log_message(self, *a): pass

@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Answer); _Answer.seen = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_port}'
    srv.shutdown(); srv.server_close()

@pytest.fixture
def hf(monkeypatch):
    "A clean huggingface_hub network setting: online, default endpoint, no proxies; its session rebuilt from the env."
    for k in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'all_proxy', 'no_proxy'):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(constants, 'ENDPOINT', 'https://huggingface.co')
    close_session()          # the next get_session() reads the proxy variables again
    yield monkeypatch
    close_session()

def _closed_port()->int:
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    return port

def test_offline_mode_makes_no_network_attempt(hf):
    "HF_HUB_OFFLINE (huggingface_hub's flag, also set by TRANSFORMERS_OFFLINE): the cache decides, nothing is sent."
    hf.setattr(constants, 'HF_HUB_OFFLINE', True)
    def no_network(*a, **k): raise AssertionError('network attempt in offline mode')
    hf.setattr(socket, 'create_connection', no_network); hf.setattr(socket.socket, 'connect', no_network)
    assert hub_available()
    with pytest.raises(Blip2LoraError, match='HF_HUB_OFFLINE is set and the local cache has no such model'):
        load_model('nobody-xyz/no-such-blip2')

def test_endpoint_is_the_address_asked(hf, server):
    "HF_ENDPOINT (a mirror; huggingface_hub.constants.ENDPOINT) answering on plain HTTP: reachable."
    hf.setattr(constants, 'ENDPOINT', server)
    assert hub_available() and _Answer.seen and _Answer.seen[0].startswith('HEAD / ')

def test_proxy_is_honoured(hf, server):
    "An endpoint only a proxy can reach: reachable through HTTP_PROXY (a raw socket to the host says 'offline')."
    hf.setattr(constants, 'ENDPOINT', 'http://hub.invalid')
    hf.setenv('HTTP_PROXY', server); close_session()
    assert hub_available()
    assert _Answer.seen == ['HEAD http://hub.invalid/ HTTP/1.1']   # the proxy was asked for the Hub's URL

def test_closed_proxy_fails_fast_with_the_reason(hf):
    port = _closed_port()
    hf.setenv('HTTPS_PROXY', f'http://127.0.0.1:{port}'); close_session()
    t = time.monotonic()
    for load in (load_model, load_processor):
        with pytest.raises(Blip2LoraError) as e: load('nobody-xyz/no-such-blip2')
        msg = str(e.value)
        assert "could not load 'nobody-xyz/no-such-blip2'" in msg and 'Hub is unreachable' in msg and '\n' not in msg
        assert f'https://huggingface.co via proxy http://127.0.0.1:{port} did not answer' in msg, msg
    assert time.monotonic() - t < 10    # refused at once; the probe's own limit is 3 s per try
    assert not hub_available(timeout=1)

# --- trust: safetensors only unless opted in, no trust_remote_code, weights_only loads --------------------------

class _Bomb:
    "Unpickling this writes a file: what a malicious pytorch_model.bin could do."
    path = None
    def __reduce__(self): return (Path.write_text, (Path(_Bomb.path), 'pwned'))

def test_pickled_weights_refused_without_running_them(tmp_path):
    import torch
    from blip2_lora.models import tiny_config, tiny_processor
    (tmp_path/'m').mkdir(); proc = tiny_processor()
    tiny_config(proc.tokenizer).save_pretrained(tmp_path/'m')
    _Bomb.path = str(tmp_path/'ran'); torch.save({'x': _Bomb()}, tmp_path/'m'/'pytorch_model.bin')
    with pytest.raises(Blip2LoraError, match='only pickled weights'): load_model(tmp_path/'m')
    assert not (tmp_path/'ran').exists()
    with pytest.raises(Exception): load_model(tmp_path/'m', allow_pickle=True)   # even opted in: weights_only unpickling
    assert not (tmp_path/'ran').exists()

def _calls(src:str):
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Call): yield node

def test_no_remote_code_and_weights_only_loads():
    "Every torch.load in the package passes weights_only=True; nothing passes trust_remote_code=True."
    bad = []
    for f in sorted(Path(blip2_lora.__file__).parent.glob('*.py')):
        for c in _calls(f.read_text()):
            kw = {k.arg: k.value for k in c.keywords}
            name = ast.unparse(c.func)
            if name.endswith(('torch.load', 'torch_load')):
                if not (isinstance(kw.get('weights_only'), ast.Constant) and kw['weights_only'].value is True): bad.append(f'{f.name}: {ast.unparse(c)}')
            t = kw.get('trust_remote_code')
            if t is not None and not (isinstance(t, ast.Constant) and t.value is False): bad.append(f'{f.name}: {ast.unparse(c)}')
    assert not bad, bad

def test_missing_shipped_weights_are_an_error_not_a_random_model(tmp_path):
    "Without blip2_lora/assets/tiny-opt (a broken install), the reserved name fails with one line; it never builds a random stand-in."
    import shutil, subprocess, sys
    from pathlib import Path
    import blip2_lora
    pkg = tmp_path/'site'/'blip2_lora'
    shutil.copytree(Path(blip2_lora.__file__).parent, pkg, ignore=shutil.ignore_patterns('assets', '__pycache__'))
    code = ("from blip2_lora.models import resolve_model, Blip2LoraError\n"
            "try: print('resolved', resolve_model('blip2-lora/tiny-opt'))\n"
            "except Blip2LoraError as e: print('error', e)")
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**__import__('os').environ, 'PYTHONPATH': str(tmp_path/'site'), 'BLIP2_LORA_CACHE': str(tmp_path/'cache')})
    assert r.stdout.startswith('error the pretrained blip2-lora/tiny-opt is missing'), r.stdout + r.stderr
    assert not (tmp_path/'cache').exists()

@pytest.mark.parametrize('name,family', [('blip2-lora/tiny-opt', 'opt'), ('blip2-lora/tiny-t5', 't5')])
def test_lm_family_agrees_on_model_config_processor_tokenizer(name, family):
    "One detector: the model, its config, its processor and its tokenizer give the same family (data and lora use it)."
    from blip2_lora.models import lm_family
    from blip2_lora.data import is_encoder_decoder
    m, p = load_model(name), load_processor(name)
    assert [lm_family(o) for o in (m, m.config, p, p.tokenizer, name)] == [family] * 5
    assert is_encoder_decoder(p) == is_encoder_decoder(m) == (family == 't5')
