"""What a base's frozen ViT separates: a linear probe on the 5 shapes no base saw, layer by layer (issue 14's encoder check).

    .venv/bin/python bench/probe.py                                   # the shipped blip2-lora/tiny-opt, ~30 s
    .venv/bin/python bench/probe.py --model pretrain_out/tiny-opt     # a candidate base from scripts/pretrain_base.py

`bench/learn.py`'s held-out task (a new colour x a new shape, 240 training images) is limited by the encoder, not by
LoRA (01b_pretrain, *What the shipped base still does poorly*). Building and scoring a whole base takes most of an
hour; this check takes half a minute: logistic regression (`blip2_lora.pretrain.linear_probe`) from the frozen ViT's patch
features to the 5 `NEW_SHAPES`, trained on images drawn as that task draws them (its development seeds,
`new_shape_rows(5_000, n)`), scored on 500 others (`new_shape_rows(7_000, 500)`), from each layer's output (0 = patch
embeddings; 'out' = after the final LayerNorm, what the Q-Former reads; and the [CLS] token of 'out' alone), next to
the raw pixels and a ViT of the same shape with random weights. Chance is 0.2. A base worth building scores clearly above the shipped one's 'out' row.
`--cnn` adds a yardstick that is not a probe: a small CNN (3 conv layers, random flips) trained from scratch on the
same images, i.e. what the training images alone teach a model built for shapes (~2 min more).
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import common  # noqa: F401  (threads, quiet warnings)
import torch


def task_pixels(proc, n_train:int, n_test:int=500)->tuple:
    "Model-size pixels and shape indices of the held-out task's images: (train pixels, test pixels, train labels, test labels)."
    from blip2_lora.pretrain import new_shape_rows
    tr, te = new_shape_rows(5_000, n_train), new_shape_rows(7_000, n_test)
    px = lambda rs: torch.cat([proc.image_processor([r[0] for r in rs[i:i + 250]], return_tensors='pt').pixel_values
                               for i in range(0, len(rs), 250)])
    return px(tr), px(te), torch.tensor([r[1] for r in tr]), torch.tensor([r[1] for r in te])


def features(vit, pixel_values:torch.Tensor)->dict:
    "Flattened patch features of every hidden state (embeddings first) and of the final output."
    with torch.no_grad(): o = vit(pixel_values=pixel_values, output_hidden_states=True)
    return {**{str(i): h.flatten(1) for i, h in enumerate(o.hidden_states)}, 'out': o.last_hidden_state.flatten(1),
            'cls': o.last_hidden_state[:, 0]}


def small_cnn(n_classes:int=5)->torch.nn.Module:
    "Three conv + batch-norm + ReLU blocks, max-pooled, and a linear head: a network built to see shapes."
    from torch import nn
    block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
    return nn.Sequential(*block(3, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2), *block(64, 128),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, n_classes))


class ScratchViT(torch.nn.Module):
    "The base's ViT architecture (`Blip2VisionModel`, fresh weights as `TinyClip` starts them) with a linear head on [CLS]."
    def __init__(self, vision_config, n_classes:int=5):
        super().__init__()
        from transformers import Blip2VisionModel
        self.vit, self.head = Blip2VisionModel(vision_config), torch.nn.Linear(vision_config.hidden_size, n_classes)
        with torch.no_grad(): self.vit.embeddings.position_embedding.normal_(0, .2)
    def forward(self, x): return self.head(self.vit(pixel_values=x).pooler_output)


def scratch_accuracy(xtr, ytr, xte, yte, steps:int=1500, seed:int=0, make=None, lr:float=2e-3)->float:
    "Test accuracy of `small_cnn` (or `make()`) trained from scratch (AdamW, batches of 64, random horizontal flips)."
    import torch.nn.functional as F
    torch.manual_seed(seed); m = (make or (lambda: small_cnn(int(ytr.max()) + 1)))()
    opt = torch.optim.AdamW(m.parameters(), lr, weight_decay=1e-2)
    for _ in range(steps):
        idx = torch.randint(len(xtr), (64,)); x = xtr[idx]
        x = torch.where(torch.rand(len(x), 1, 1, 1) < .5, x.flip(3), x)
        loss = F.cross_entropy(m(x), ytr[idx]); opt.zero_grad(); loss.backward(); opt.step()
    m.eval()
    with torch.no_grad(): return round((m(xte).argmax(1) == yte).float().mean().item(), 3)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default='blip2-lora/tiny-opt', help='base: reserved tiny name or a saved folder')
    ap.add_argument('--n', nargs='+', type=int, default=[240, 2000], help='training images per probe')
    ap.add_argument('--n-test', type=int, default=500, help='test images')
    ap.add_argument('--cnn', action='store_true', help='add a small CNN trained from scratch on the same images (a yardstick)')
    ap.add_argument('--cnn-steps', type=int, default=1500, help='its training steps (also --vit\'s)')
    ap.add_argument('--vit', action='store_true', help="add the base's ViT architecture trained from scratch the same way (lr 1e-3)")
    ap.add_argument('--json', default=None, help='also write the table here')
    a = ap.parse_args(argv)
    from transformers import Blip2VisionModel
    from blip2_lora.models import load_model, load_processor
    from blip2_lora.pretrain import linear_probe
    t0 = time.time()
    base, proc = load_model(a.model), load_processor(a.model)
    ptr, pte, ytr, yte = task_pixels(proc, max(a.n), a.n_test)
    torch.manual_seed(0); rnd = Blip2VisionModel(base.config.vision_config).eval()
    rows = {'pixels': (ptr.flatten(1), pte.flatten(1))}
    ftr, fte = features(base.vision_model, ptr), features(base.vision_model, pte)
    rows.update({f'ViT layer {k}': (ftr[k], fte[k]) for k in ftr if k != 'cls'})
    rows['ViT out, [CLS] only'] = (ftr['cls'], fte['cls'])
    rows['random ViT, out'] = (features(rnd, ptr)['out'], features(rnd, pte)['out'])
    res = {name: {n: linear_probe(x[:n], ytr[:n], y, yte) for n in a.n} for name, (x, y) in rows.items()}
    if a.cnn: res['small CNN, trained'] = {n: scratch_accuracy(ptr[:n], ytr[:n], pte, yte, a.cnn_steps) for n in a.n}
    if a.vit:
        make = lambda: ScratchViT(base.config.vision_config, int(ytr.max()) + 1)
        res['ViT, trained'] = {n: scratch_accuracy(ptr[:n], ytr[:n], pte, yte, a.cnn_steps, make=make, lr=1e-3) for n in a.n}
    print(f'linear probe on the 5 new shapes (chance 0.2), base {a.model}, {a.n_test} test images')
    print(f"{'features':22}" + ''.join(f'{f"{n} images":>14}' for n in a.n))
    for name, r in res.items(): print(f'{name:22}' + ''.join(f'{r[n]:>14.3f}' for n in a.n))
    print(f'{time.time() - t0:.0f} s, {torch.get_num_threads()} torch thread(s)')
    if a.json: Path(a.json).write_text(json.dumps(dict(model=a.model, n_test=a.n_test, accuracy=res), indent=1))
    return res


if __name__ == '__main__': main()
