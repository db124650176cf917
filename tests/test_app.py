"The Gradio page in headless Chromium (DevTools protocol over a pipe, tools/docs_check.Chrome): upload an image, read both captions; a bad upload gets a one-line message; no request leaves localhost."
import json, socket, sys, time
from pathlib import Path
from urllib.parse import urlsplit
import pytest

gr = pytest.importorskip('gradio', reason="gradio is not installed: pip install -e '.[app]'")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tools'))
from docs_check import Chrome, find_chromium, INSTALL_HINT
if not find_chromium(): pytest.skip(f'chromium not found: {INSTALL_HINT}', allow_module_level=True)

import torch
from peft import LoraConfig, get_peft_model
from blip2_lora.app import EMPTY, Compare, build_app
from blip2_lora.data import draw_shape
from blip2_lora.infer import load_for_inference, caption, answer
from blip2_lora.models import load_model

def _value(c, elem_id):
    return c.eval(f"(() => {{ const e = document.querySelector('#{elem_id} textarea, #{elem_id} input'); return e ? e.value : null; }})()")

def _wait(c, elem_id, timeout=30, pred=bool):
    end = time.time() + timeout
    while time.time() < end:
        v = _value(c, elem_id)
        if v is not None and pred(v): return v
        time.sleep(0.2)
    raise AssertionError(f'#{elem_id} never filled in {timeout} s (value {_value(c, elem_id)!r})')

def _upload(c, url, path):
    "Open the page and put `path` into the image file box, as a user choosing a file does."
    c.open(url)
    end = time.time() + 30
    while not c.eval("!!document.querySelector('#image-file input[type=file]')"):
        assert time.time() < end, 'the page never showed the file box'
        time.sleep(0.2)
    root = c.call('DOM.getDocument', session=True, depth=-1, pierce=True)['root']['nodeId']
    node = c.call('DOM.querySelector', session=True, nodeId=root, selector='#image-file input[type=file]')['nodeId']
    c.call('DOM.setFileInputFiles', session=True, nodeId=node, files=[str(path)])

def test_page_shows_both_captions_and_bad_upload_message(tmp_path):
    torch.manual_seed(0)
    get_peft_model(load_model(), LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'], init_lora_weights=False)).save_pretrained(tmp_path/'adapter')
    png = tmp_path/'shape.png'; draw_shape('blue', 'square', 'right').save(png)
    bad = tmp_path/'notes.png'; bad.write_text('a text file renamed to .png')
    q = 'what colour is the shape?'
    base, adapted = load_for_inference(), load_for_inference(tmp_path/'adapter', merge=False)
    want = [caption(*base, [png])[0] or EMPTY, caption(*adapted, [png])[0] or EMPTY]
    want_ans = [answer(*base, [png], q)[0] or EMPTY, answer(*adapted, [png], q)[0] or EMPTY]   # '' is shown as EMPTY
    assert want[0] != want[1]                                               # the adapter visibly changes the caption

    demo = build_app(loaded=Compare(tmp_path/'adapter'))
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    demo.launch(server_name='127.0.0.1', server_port=port, share=False, inline=False, prevent_thread_lock=True,
                ssr_mode=False, quiet=True, show_error=False)
    c = Chrome(find_chromium())
    try:
        c.call('Network.enable', session=True); c.call('DOM.enable', session=True)
        url = f'http://127.0.0.1:{port}/'
        _upload(c, url, png)
        got = [_wait(c, 'base-caption'), _wait(c, 'adapter-caption')]
        assert got == want, (got, want)
        assert _value(c, 'status') == 'captioned'
        c.eval(f"""(() => {{ const t = document.querySelector('#question textarea, #question input');
                   t.value = {json.dumps(q)}; t.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()""")
        c.eval("document.querySelector('#ask').click()")
        assert [_wait(c, 'base-answer'), _wait(c, 'adapter-answer')] == want_ans
        requests = [e['params']['request']['url'] for e in c.events if e.get('method') == 'Network.requestWillBeSent']

        _upload(c, url, bad)                                                  # a fresh page, then the bad file
        msg = _wait(c, 'status', pred=lambda v: 'readable' in v)
        assert 'notes.png is not a readable image' in msg and '\n' not in msg and 'Traceback' not in msg
        assert _value(c, 'base-caption') == '' and 'Traceback' not in c.eval('document.body.innerText')
        requests += [e['params']['request']['url'] for e in c.events if e.get('method') == 'Network.requestWillBeSent']
        hosts = {urlsplit(u).hostname for u in requests if urlsplit(u).scheme in ('http', 'https', 'ws', 'wss')}
        assert requests and hosts == {'127.0.0.1'}, hosts                   # no CDN, fonts, analytics or share server
    finally:
        c.close(); demo.close()
