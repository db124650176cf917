"Checks of blip2_lora.quant outside the notebook: from-scratch int8/NF4 against bitsandbytes, quantized-module prediction."
import warnings
import pytest, torch
from torch import nn
bnb = pytest.importorskip('bitsandbytes')
import bitsandbytes.functional as bF
from blip2_lora.quant import absmax_quant, int8_matmul, nf4_levels, nf4_quant, nf4_dequant, quantized_modules, true_weight_bytes
from blip2_lora.models import load_model, meta_model

warnings.filterwarnings('ignore', message='MatMul8bitLt: inputs will be cast')

@pytest.mark.parametrize('seed', [0, 1])
def test_int8_matmul_matches_linear8bitlt(seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(24, 128, generator=g); X[:, [5, 77]] *= 40; X = X.half()
    W = (torch.randn(48, 128, generator=g) / 11).half()
    lin = bnb.nn.Linear8bitLt(128, 48, bias=False, has_fp16_weights=False, threshold=6.0)
    lin.weight = bnb.nn.Int8Params(W.float().clone(), requires_grad=False, has_fp16_weights=False)
    lin = lin.to('cpu').eval()
    with torch.no_grad(): ours, theirs = int8_matmul(X, W).float(), lin(X).float()
    assert ((ours - theirs).norm() / theirs.norm()) < 1e-3
    ref = X.float() @ W.float().T
    naive = int8_matmul(X, W, threshold=0.).float()
    assert (ours - ref).norm() < (naive - ref).norm() / 3   # the decomposition helps with outliers

def test_absmax_codes_match_bnb():
    A = torch.randn(16, 40).half()
    CA, SCA, _ = bF.int8_vectorwise_quant(A)
    q, s = absmax_quant(A)
    assert torch.equal(q, CA) and torch.equal(s.squeeze(-1), SCA)

@pytest.mark.parametrize('dq', [False, True])
def test_nf4_matches_bnb(dq):
    torch.manual_seed(3)
    w = torch.randn(96, 640) * 0.03
    assert torch.allclose(nf4_levels(), bF.get_4bit_type('nf4', device='cpu'), atol=1e-6)
    packed, st = bF.quantize_4bit(w, blocksize=64, quant_type='nf4', compress_statistics=dq)
    ours = nf4_quant(w, double_quant=dq)
    assert torch.equal(ours['packed'], packed.reshape(-1))
    assert torch.allclose(nf4_dequant(dict(ours, absmax=st.absmax)), bF.dequantize_4bit(packed, st), rtol=0, atol=1e-7)

def test_quantized_modules_prediction():
    m = load_model(quant='nf4')
    with torch.device('meta'): ref = type(m)(m.config)
    pred = quantized_modules(ref, 'nf4')
    assert pred == [n for n, x in m.named_modules() if isinstance(x, bnb.nn.Linear4bit)]
    assert not any(n.startswith('qformer') or 'lm_head' in n for n in pred)
    assert 'language_projection' in quantized_modules(ref, 'int8')
    assert ('language_projection' in pred) == (ref.language_projection.in_features % 64 == 0)   # bnb's CPU NF4 kernel needs whole 64-blocks
    assert true_weight_bytes(m) > m.get_memory_footprint()
    real = quantized_modules(meta_model('blip2-opt-2.7b'))
    assert real == quantized_modules(meta_model('blip2-opt-2.7b'), 'nf4')   # every real width is a multiple of 64
    assert len(real) == 39 * 4 + 1 + 32 * 6   # ViT (qkv, projection, fc1, fc2), projection, OPT (q, k, v, out, fc1, fc2)

from blip2_lora.quant import plan, Plan, weight_bytes
from blip2_lora.models import Blip2LoraError, QUANTS

@pytest.mark.parametrize('quant', QUANTS)
def test_plan_weights_match_tiny_footprint(quant):
    m = load_model(quant=quant)
    p = plan('blip2-lora/tiny-opt', quant, dtype='float32')
    assert abs(p.weights - m.get_memory_footprint()) <= 0.1 * m.get_memory_footprint()
    assert p.weights + p.constants == true_weight_bytes(m)

def test_plan_real_variants_and_table():
    for k in ['blip2-opt-2.7b', 'Salesforce/blip2-flan-t5-xl']:
        p = plan(k, 'nf4', 'seed', 8, 2, 16, True, gpu_memory=16)
        assert isinstance(p, Plan) and p.fits and p.total == sum(p.parts.values())
        s = str(p)
        assert 'total' in s and 'fits in 16 GB' in s and len(s.splitlines()) >= 10
    big = plan('blip2-flan-t5-xxl', 'none', gpu_memory=16)
    assert big.fits is False and 'does NOT fit' in str(big)
    assert plan(gpu_memory=None).fits is None
    a, b = plan(batch_size=2), plan(batch_size=8)
    assert a.weights == b.weights and b.activations > 3 * a.activations
    assert plan(gradient_checkpointing=True).activations < plan().activations

@pytest.mark.parametrize('kw,msg', [(dict(model_id='blip2-opt-13b'), 'unknown BLIP-2 variant'), (dict(r=0), 'r must be'),
                                    (dict(r=-1), 'r must be'), (dict(batch_size=0), 'batch_size must be'),
                                    (dict(quant='fp8'), 'unknown quant'), (dict(lora_preset='x'), 'unknown LoRA preset'),
                                    (dict(gpu_memory=-1), 'gpu_memory')])
def test_plan_bad_args(kw, msg):
    with pytest.raises(Blip2LoraError, match=msg) as e: plan(**kw)
    assert '\n' not in str(e.value)
