"""What the embedded base learns with the CLI's defaults (issue 14's targets), over seeds.

    .venv/bin/python bench/learn.py                       # all tasks, seeds 0 1 2, the shipped blip2-lora/tiny-opt
    .venv/bin/python bench/learn.py --tasks heldout --seeds 0 --model pretrain_out/tiny-opt -- --lr 1e-3

A `--model FOLDER` is not a reserved tiny name, so `blip2-lora train` gives it the 'real' recipe (`config.RECIPES`):
to measure a candidate base with the tiny defaults, pass them after `--` (`-- --targets llm+qformer --lr 4e-3 --max-steps 600
--batch-size 8`). Every run is the command a new user types, `blip2-lora train --data D --output O --seed S` (plus the arguments after
`--`), in a subprocess, timed; then greedy captions of the test images through `load_for_inference` + `caption`.

- photos:  8 of scikit-image's bundled photographs (`pip install scikit-image`) with free-text captions in ordinary
           English, none of them a world caption: how many are recalled exactly (the seed's football experiment in
           miniature: memorise a handful of pictures). Target >= 7 of 8 in <= 2 minutes.
- heldout: one object in a colour and a shape the base never saw (`NEW_COLOURS` x `NEW_SHAPES`, 30 classes), with a
           random size, texture, place and background; caption "a teal pentagon". Train on 240 images, score exact
           match on 120 new images of another seed. Target >= 0.8 in <= 3 minutes; chance 1/30.
- control: heldout with the training captions shuffled across images: the images no longer predict the caption, so
           the score must stay near chance (a model that ignores the image scores at most the top class's share).
Numbers are written to --out (JSON) and printed as mean +- std over seeds. Nothing here is tuned on these sets:
the tiny recipe was chosen on the world's own validation images and on other seeds.
"""
from __future__ import annotations
import argparse, json, os, random, statistics, subprocess, sys, tempfile, time
from collections import Counter
from pathlib import Path

CLEAR = os.environ.get('LEARN_CLEAR') == '1'   # LEARN_CLEAR=1: held-out objects big and plain (shape easier to see)
DEV = os.environ.get('LEARN_DEV') == '1'       # LEARN_DEV=1: other training seeds and another test set, to choose settings on

PHOTOS = {  # scikit-image data name -> caption (words of ordinary English; none occurs in the world's captions)
    'astronaut': 'an astronaut in a white suit beside a flag',
    'coffee': 'a cup of coffee on a saucer',
    'chelsea': 'a ginger cat looking to the side',
    'rocket': 'a rocket standing on the launch pad',
    'camera': 'a man with a camera on a tripod',
    'coins': 'rows of old coins on a grey table',
    'hubble_deep_field': 'galaxies scattered across dark space',
    'immunohistochemistry': 'stained cells seen through a microscope',
}


def write_folder(folder:Path, rows:list[tuple]):
    "An imagefolder: PNGs + metadata.jsonl (file_name, text)."
    folder.mkdir(parents=True)
    with open(folder/'metadata.jsonl', 'w') as f:
        for i, (im, text) in enumerate(rows):
            im.save(folder/f'{i:04d}.png'); f.write(json.dumps(dict(file_name=f'{i:04d}.png', text=text)) + '\n')


def photo_rows()->list[tuple]:
    try: import skimage.data as d
    except ImportError: sys.exit('photos needs scikit-image: .venv/bin/pip install scikit-image')
    from blip2_lora.data import load_image
    return [(load_image(getattr(d, k)()), c) for k, c in PHOTOS.items()]


def novel_rows(seed:int, n:int)->list[tuple]:
    "n images of one object in a colour and shape the base never saw, captioned 'a COLOUR SHAPE'."
    from blip2_lora.pretrain import NEW_COLOURS, NEW_SHAPES, draw_scene, sample_scene
    out = []
    for i in range(n):
        rng = random.Random(seed * 7919 + i)
        s = sample_scene(rng, tuple(NEW_COLOURS), NEW_SHAPES)
        o = dict(s['objects'][0], size='big', texture='plain') if CLEAR else s['objects'][0]
        s = dict(s, kind='one', objects=[o])
        out.append((draw_scene(s, 64, rng), f"a {o['colour']} {o['shape']}"))
    return out


def run(task:str, seed:int, model:str|None, extra:list[str], work:Path)->dict:
    from blip2_lora.infer import caption, load_for_inference
    if task == 'photos': train = test = photo_rows()
    else:
        train, test = novel_rows(100 + seed, 240), novel_rows(9_000, 120)   # test: one fixed set, its own seed
        if DEV: train, test = novel_rows(5_000 + seed, 240), novel_rows(7_000, 120)   # settings are chosen here, never on the above
        if task == 'control':
            texts = [t for _, t in train]; random.Random(seed).shuffle(texts)
            train = [(im, t) for (im, _), t in zip(train, texts)]
    d, out = work/f'{task}-{seed}'/'data', work/f'{task}-{seed}'/'run'
    write_folder(d, train)
    cmd = [str(Path(sys.executable).parent/'blip2-lora'), 'train', '--data', str(d), '--output', str(out), '--seed', str(seed)]
    cmd += (['--model', model] if model else []) + extra
    t = time.time(); r = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t
    if r.returncode: sys.exit(f'{" ".join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}')
    m, p = load_for_inference(out, model=model)
    got = caption(m, p, [im for im, _ in test], batch_size=32)
    exact = sum(g.strip().lower() == c.lower() for g, (_, c) in zip(got, test))
    top = Counter(c for _, c in test).most_common(1)[0][1] / len(test)   # a model that ignores the image scores <= this
    res = dict(task=task, seed=seed, exact=exact / len(test), n=len(test), train_seconds=round(secs, 1),
               top_class=round(top, 3), samples=list(zip(got[:4], [c for _, c in test[:4]])))
    print(json.dumps(res), flush=True)
    return res


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index('--') + 1:] if '--' in argv else []
    argv = argv[:argv.index('--')] if '--' in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tasks', nargs='+', default=['photos', 'heldout', 'control'], choices=['photos', 'heldout', 'control'])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--model', default=None, help='base model folder (default: the CLI default, the shipped tiny-opt)')
    ap.add_argument('--out', default='bench/learn.json')
    a = ap.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    res = []
    with tempfile.TemporaryDirectory() as w:
        for task in a.tasks:
            for s in a.seeds: res.append(run(task, s, a.model, extra, Path(w)))
    print(f"\n{'task':10}{'exact (mean +- std)':>24}{'train s':>10}  seeds")
    for task in a.tasks:
        rs = [r for r in res if r['task'] == task]; ex = [r['exact'] for r in rs]
        sd = statistics.stdev(ex) if len(ex) > 1 else 0.0
        print(f"{task:10}{statistics.mean(ex):>15.3f} +- {sd:.3f}{statistics.mean(r['train_seconds'] for r in rs):>10.0f}  {len(rs)}")
    Path(a.out).write_text(json.dumps(dict(extra=extra, model=a.model, runs=res), indent=1))


if __name__ == '__main__': main()
