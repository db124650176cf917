"Batch captioning: 2 torchrun CPU processes (gloo) == 1 process, every image once in input order; resume captions only what is missing."
import json, os, random, subprocess, sys, textwrap
from pathlib import Path
import pytest
import blip2_lora.batch as B
from blip2_lora.batch import caption_files, caption_dataset
from blip2_lora.data import draw_shape, COLOURS, SHAPES, POSITIONS
from blip2_lora.infer import load_for_inference
from blip2_lora.models import Blip2LoraError

class Killed(Exception): "Stands in for a SIGKILL in the middle of a run."

GENERATE = B.generate_texts
N = 7     # odd: the two processes get 4 and 3 images

@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d, rng = tmp_path_factory.mktemp('imgs'), random.Random(1)
    out = []
    for i in range(N):
        out.append(d/f'{i:02d}.png')
        draw_shape(rng.choice(list(COLOURS)), rng.choice(list(SHAPES)), rng.choice(list(POSITIONS)), rng=rng).save(out[-1])
    return out

@pytest.fixture(scope='module')
def loaded(): return load_for_inference()

@pytest.fixture(scope='module')
def one_process(files, loaded, tmp_path_factory):
    out = tmp_path_factory.mktemp('one')/'caps.jsonl'
    r = caption_files(files, out, loaded=loaded, batch_size=2, max_new_tokens=12, progress=False)
    assert r['captioned'] == N and r['processes'] == 1
    return _rows(out)

def _rows(p): return [json.loads(l) for l in Path(p).read_text().splitlines()]

def _count_generate(monkeypatch, fail_after=None):
    "Wrap the one generation function as the batch module calls it: count images per call, optionally die after k calls."
    calls, orig = [], GENERATE
    def counted(model, processor, images, *a, **kw):
        if fail_after is not None and len(calls) >= fail_after: raise Killed('killed')
        calls.append(len(images)); return orig(model, processor, images, *a, **kw)
    monkeypatch.setattr(B, 'generate_texts', counted)
    return calls

def test_two_processes_match_one(files, one_process, tmp_path):
    out = tmp_path/'caps.jsonl'
    script = tmp_path/'worker.py'
    script.write_text(textwrap.dedent(f'''
        import json, os, torch
        torch.set_num_threads(1)
        from blip2_lora.batch import caption_files
        r = caption_files({[str(f) for f in files]!r}, {str(out)!r}, batch_size=2, max_new_tokens=12, device='cpu')
        open({str(tmp_path)!r} + '/result' + os.environ['RANK'] + '.json', 'w').write(json.dumps(r))
    '''))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
    p = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(script)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    res = {f.stem[-1]: json.loads(f.read_text()) for f in tmp_path.glob('result*.json')}
    assert set(res) == {'0', '1'} and all(r['processes'] == 2 and r['captioned'] == N for r in res.values())
    rows = _rows(out)
    assert [r['index'] for r in rows] == list(range(N))                   # every image exactly once, input order
    assert [r['image'] for r in rows] == [str(f) for f in files]
    assert rows == one_process                                             # same captions as one process
    assert not list(tmp_path.glob('caps.jsonl.*'))                          # parts merged and removed, no .tmp left
    assert 'batch-caption: 7 images, 0 already in' in p.stderr and '\r' not in p.stderr   # plain lines in a log

def test_resume_after_a_kill_captions_only_the_missing(files, loaded, one_process, tmp_path, monkeypatch):
    out = tmp_path/'caps.jsonl'
    _count_generate(monkeypatch, fail_after=2)                            # dies in the third batch
    with pytest.raises(Killed):
        caption_files(files, out, loaded=loaded, batch_size=2, max_new_tokens=12, progress=False)
    part = tmp_path/'caps.jsonl.rank0.part'
    assert not out.exists() and len(_rows(part)) == 4                      # two batches flushed, no final file yet
    with open(part, 'a') as f: f.write('{"index": 4, "image": "')          # a torn line, as a kill mid-write leaves
    calls = _count_generate(monkeypatch)
    r = caption_files(files, out, loaded=loaded, batch_size=2, max_new_tokens=12, progress=False)
    assert (r['captioned'], r['already_done']) == (N - 4, 4) and calls == [2, 1]    # only images 4, 5, 6
    assert _rows(out) == one_process and not part.exists()
    calls = _count_generate(monkeypatch)                                   # done: a re-run generates nothing
    assert caption_files(files, out, loaded=loaded, batch_size=2, max_new_tokens=12, progress=False)['captioned'] == 0
    assert calls == [] and _rows(out) == one_process

def test_grown_input_and_errors(files, loaded, one_process, tmp_path, monkeypatch):
    out = tmp_path/'caps.jsonl'
    caption_files(files[:3], out, loaded=loaded, batch_size=2, max_new_tokens=12, progress=False)
    calls = _count_generate(monkeypatch)
    r = caption_files(files, out, loaded=loaded, batch_size=2, max_new_tokens=12, progress=False)
    assert r['captioned'] == N - 3 and sum(calls) == N - 3 and _rows(out) == one_process
    with pytest.raises(Blip2LoraError, match='holds captions of other images'):
        caption_files(files[::-1], out, loaded=loaded, progress=False)
    bad = tmp_path/'bad.png'; bad.write_text('not an image')
    r = caption_files([files[0], bad], tmp_path/'bad.jsonl', loaded=loaded, max_new_tokens=12, progress=False)
    rows = _rows(tmp_path/'bad.jsonl')
    assert r['errors'] == 1 and rows[0]['caption'] == one_process[0]['caption']
    assert rows[1]['caption'] is None and 'not a readable image' in rows[1]['error']
    with pytest.raises(Blip2LoraError, match='is a folder'): caption_files(files, tmp_path, loaded=loaded)
    with pytest.raises(Blip2LoraError, match='batch_size must be >= 1'): caption_files(files, out, loaded=loaded, batch_size=0)

def test_dataset_and_folder_sources(files, loaded, one_process, tmp_path):
    import datasets
    r = caption_files(files[0].parent, tmp_path/'folder.jsonl', loaded=loaded, batch_size=3, max_new_tokens=12, progress=False)
    assert r['images'] == N and _rows(tmp_path/'folder.jsonl') == one_process
    ds = datasets.Dataset.from_dict({'picture': [str(f) for f in files]}).cast_column('picture', datasets.Image())
    caption_dataset(ds, tmp_path/'ds.jsonl', image_column='picture', loaded=loaded, batch_size=4, max_new_tokens=12, progress=False)
    assert [(r['image'], r['caption']) for r in _rows(tmp_path/'ds.jsonl')] == [(r['image'], r['caption']) for r in one_process]
    r = caption_dataset('synthetic:3', tmp_path/'syn.jsonl', loaded=loaded, max_new_tokens=12, progress=False)
    assert r['images'] == 3 and all(x['image'] is None and x['caption'] for x in _rows(tmp_path/'syn.jsonl'))
    with pytest.raises(Blip2LoraError, match="no 'img' column"): caption_dataset(ds, tmp_path/'x.jsonl', image_column='img', loaded=loaded)
