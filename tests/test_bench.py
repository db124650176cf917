"The benchmark scripts in bench/ run end to end in a tiny mode (no timing asserts: speed is the scripts' job, not the tests')."
import sys
from pathlib import Path
import pytest, torch

BENCH = Path(__file__).parents[1]/'bench'
sys.path.insert(0, str(BENCH))

def test_reference_batches_equal_ours():
    "The corrected reference collator gives token-for-token the batches of `blip2_lora.data.Collator` (both learn the same thing)."
    import train as bt
    from common import proportioned_model
    from blip2_lora.models import load_processor
    from blip2_lora.data import Collator, synthetic
    p = load_processor(proportioned_model()); ds = synthetic(5, image_size=224)
    rows = [ds[i] for i in range(5)]
    a, b = bt.reference_collator(p)(rows), Collator(p).text(rows)
    assert set(b) == {'input_ids', 'attention_mask', 'labels'}
    for k in b: assert torch.equal(a[k], b[k]), k
    assert (a['labels'][:, :p.num_query_tokens + 1] == -100).all() and (a['labels'] != -100).any()

def test_proportioned_split():
    "The benchmark model splits forward compute like blip2-opt-2.7b (vision/LLM within 10% of 1.53)."
    from common import proportioned_model, forward_flops, REAL_SPLIT, caching_ceiling
    from blip2_lora.models import load_model, load_processor
    md = proportioned_model()
    f = forward_flops(load_model(md), load_processor(md))
    assert abs(f['vision'] / f['llm'] / REAL_SPLIT - 1) < 0.1
    assert caching_ceiling(f, 1) == pytest.approx(1.0) and 1.5 < caching_ceiling(f, 50) < 2.0

def test_train_bench_tiny(capsys):
    "One step of the reference and of our train(), each in a child process: same final loss, the table and verdict print."
    import train as bt
    med = bt.main(['--epochs', '1', '--n-images', '2', '--repeats', '1', '--configs', 'reference,ours'])
    out = capsys.readouterr().out
    assert 'verdict:' in out and 'FLOP ceiling' in out
    assert med['ours']['loss'] == pytest.approx(med['reference']['loss'], rel=0.01)
    assert all(m['rss'] > 100 and m['sps'] > 0 for m in med.values())

def test_infer_bench_tiny(capsys):
    import infer as bi
    r = bi.main(['--n-images', '2', '--repeats', '1', '--new-tokens', '3', '--batch', '2'])
    out = capsys.readouterr().out
    assert 'verdict:' in out and set(r['med']) == {'base', 'unmerged', 'merged', 'base, batch 2'}
    assert '2/2 captions identical' in out   # batched (left-padded) captions equal one-by-one ones

def test_quant_bench_tiny(capsys):
    "Footprints of none/int8/nf4 are measured on real bitsandbytes layers and plan() matches them."
    import quant as bq
    r = bq.main(['--steps', '1'])
    assert 'verdict:' in capsys.readouterr().out
    assert r['nf4']['weights'] < r['int8']['weights'] < r['none']['weights']
    for q in r: assert r[q]['plan'] == pytest.approx(r[q]['weights'], rel=0.02), q

def test_gpu_script_dry_run(tmp_path, capsys):
    "bench/gpu.py end to end on the CPU with the tiny model (fp32 / int8 / nf4, batch 2 and 8)."
    import gpu
    rows = gpu.main(['--dry-run', '--json', str(tmp_path/'gpu.json')])
    out = capsys.readouterr().out
    assert [r['quant'] for r in rows] == ['fp32', 'int8', 'nf4'] and 'b8 samp/s' in out
    for r in rows:
        assert set(r['train']) == {2, 8} and r['caption_s'] > 0 and r['weights'] > 0
        assert all(t['loss'] == t['loss'] and t['plan'] > 0 for t in r['train'].values())  # finite loss, a plan estimate
    assert (tmp_path/'gpu.json').exists()

def test_learn_bench_runs_the_cli_and_scores(tmp_path):
    "bench/learn.py: held-out rows name only unseen colours/shapes, the control keeps captions but breaks pairs, one short run scores."
    import learn
    from blip2_lora.pretrain import NEW_COLOURS, NEW_SHAPES
    rows = learn.novel_rows(3, 40)
    assert all(c.split()[1] in NEW_COLOURS and c.split()[2] in NEW_SHAPES for _, c in rows)
    import json, numpy as np
    assert learn.novel_rows(3, 5)[0][1] == rows[0][1]                          # a row is a function of (seed, i)
    assert np.asarray(learn.novel_rows(4, 1)[0][0]).tobytes() != np.asarray(rows[0][0]).tobytes()
    r = learn.run('control', 0, None, ['--max-steps', '2', '--batch-size', '4'], tmp_path)
    assert r['n'] == 120 and 0 <= r['exact'] <= 1 and r['train_seconds'] > 0 and 0 < r['top_class'] < 1
    texts = [json.loads(l)['text'] for l in (tmp_path/'control-0'/'data'/'metadata.jsonl').read_text().splitlines()]
    true = [c for _, c in learn.novel_rows(100, 240)]
    assert sorted(texts) == sorted(true) and texts != true                       # same captions, pairs broken

def test_probe_bench_reads_the_learn_task_images(capsys):
    "bench/probe.py probes the very images bench/learn.py's held-out task draws, and the shipped ViT beats random weights."
    import learn, probe, numpy as np
    from blip2_lora.pretrain import new_shape_rows, NEW_SHAPES
    a, b = learn.novel_rows(5_000, 3), new_shape_rows(5_000, 3)
    assert all(np.asarray(x).tobytes() == np.asarray(y).tobytes() and c.split()[2] == NEW_SHAPES[k] for (x, c), (y, k) in zip(a, b))
    r = probe.main(['--n', '240', '--n-test', '150', '--cnn', '--vit', '--cnn-steps', '3'])
    assert 'ViT layer out' in capsys.readouterr().out and set(r) >= {'pixels', 'ViT layer 0', 'ViT layer out', 'random ViT, out', 'small CNN, trained', 'ViT, trained'}
    assert r['ViT layer out'][240] > r['random ViT, out'][240] + 0.1   # measured 0.55 vs 0.34 on 500 test images

def test_encoder_bench_tiny(tmp_path, capsys):
    "bench/encoder.py: a CLIP-only build with recipe overrides, scored by the new-shape probe; a bad key is one line."
    import encoder, json
    small = ['n_train=300', 'n_val=40', 'vocab_size=600']
    r = encoder.main(['--steps', '3', '--pool', 'patches', '--set', *small, '--json', str(tmp_path/'r.jsonl')])
    assert set(r['probe']) == {240, 2000} and all(0 <= v <= 1 for v in r['probe'].values()) and r['pool'] == 'patches'
    assert json.loads((tmp_path/'r.jsonl').read_text())['set'] == small and 'i2t@1' in r['clip_recall']
    with pytest.raises(SystemExit, match="unknown recipe key 'widht'"): encoder.main(['--set', 'widht=3'])
    d = encoder.main(['--distill', '--steps', '3', '--set', *small, 'distill_steps=3'])     # the recipe's teacher -> ViT
    assert set(d['probe']) == set(d['teacher_probe']) == set(d['cls_probe']) == {240, 2000} and set(d['distill_loss']) == {'dense', 'cls'}
