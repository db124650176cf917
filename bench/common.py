"""Shared pieces of the benchmarks: a tiny BLIP-2 whose compute split follows blip2-opt-2.7b, FLOP counts, timing.

The real model spends ~520 GFLOP per image in the ViT-g forward and ~340 GFLOP in OPT-2.7B's forward over 64 tokens
(32 soft-prompt + ~32 text); the Q-Former is small. A benchmark on a tiny model only says something about the real
one when the tiny model splits its compute the same way, so `proportioned_model` measures the split with
`torch.utils.flop_counter` and `REAL_SPLIT` states the target.
"""
from __future__ import annotations
import os, time, tempfile, statistics, warnings
from pathlib import Path
for _k, _v in dict(OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', TRANSFORMERS_VERBOSITY='error', TQDM_DISABLE='1').items():
    os.environ.setdefault(_k, _v)  # 2 shared cores: one thread unless told otherwise; no progress bars in the tables
warnings.filterwarnings('ignore', message='.*(gradient_checkpointing|kernels-community|MatMul8bitLt).*')
import logging; logging.getLogger('bitsandbytes').setLevel(logging.ERROR)  # int8: 'inputs will be cast' on every matmul
import torch
from torch.utils.flop_counter import FlopCounterMode

REAL_VISION_GFLOP, REAL_LLM_GFLOP = 520.0, 340.0  # per image / per 64-token sequence, forward
REAL_SPLIT = REAL_VISION_GFLOP / REAL_LLM_GFLOP     # ≈ 1.53

# 224-px images (patch 16 -> 197 tokens) so the vision tower matters; widths chosen so the split is close to REAL_SPLIT
PROPORTIONED = dict(image_size=224, patch_size=16, hidden=64, layers=2, heads=4, num_query_tokens=32,
                    vision=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4),
                    text=dict(hidden_size=192, word_embed_proj_dim=192, ffn_dim=768, num_hidden_layers=4,
                              num_attention_heads=4))

def proportioned_model(out_dir:str|Path|None=None, seed:int=0)->Path:
    "Build (once; atomic, so parallel callers are safe) the tiny BLIP-2 whose vision : LLM forward FLOPs follow blip2-opt-2.7b's."
    import hashlib, json, shutil
    from blip2_lora.models import tiny_blip2, TINY_VERSION
    key = hashlib.sha1(json.dumps([PROPORTIONED, TINY_VERSION, seed], sort_keys=True).encode()).hexdigest()[:8]
    out = Path(out_dir or Path(tempfile.gettempdir())/f'blip2-lora-bench-proportioned-{key}')
    if (out/'config.json').exists(): return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix='.build-'))
    tiny_blip2(tmp, seed=seed, **PROPORTIONED)
    try: tmp.rename(out)
    except OSError: shutil.rmtree(tmp, ignore_errors=True)  # another process built it first
    return out

def forward_flops(model, processor, n_text_tokens:int=32)->dict:
    "Measured forward FLOPs of the parts for one image and a `n_text_tokens` caption (FlopCounterMode)."
    from PIL import Image
    im = Image.new('RGB', (224, 224), 'white')
    enc = processor(images=im, text=' '.join(['a'] * n_text_tokens), return_tensors='pt')
    enc['input_ids'] = enc['input_ids'][:, :model.config.num_query_tokens + n_text_tokens]
    enc['attention_mask'] = enc['attention_mask'][:, :enc['input_ids'].shape[1]]
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc: v = model.vision_model(enc['pixel_values'])
        vision = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            q = model.qformer(query_embeds=model.query_tokens, encoder_hidden_states=v.last_hidden_state)
            model.language_projection(q.last_hidden_state)
        qformer = fc.get_total_flops()
        emb = model.get_input_embeddings()(enc['input_ids'])
        with FlopCounterMode(display=False) as fc: model.language_model(inputs_embeds=emb, attention_mask=enc['attention_mask'])
        llm = fc.get_total_flops()
    return dict(vision=vision, qformer=qformer, llm=llm)

def caching_ceiling(f:dict, epochs:int, backward_factor:float=1.0)->float:
    """Speed-up ceiling of caching the frozen towers' output, from FLOPs alone.

    Without cache every step runs vision + Q-Former forward (frozen: no backward) and the LLM forward + backward
    (backward ≈ 1× forward: gradients w.r.t. activations only, frozen weights get none; LoRA adds little). With the cache the
    towers run once per image (first epoch) instead of every epoch."""
    towers, llm = f['vision'] + f['qformer'], f['llm'] * (1 + backward_factor)
    return (epochs * (towers + llm)) / (towers + epochs * llm)

def median(xs): return statistics.median(xs)
