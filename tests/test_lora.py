"LoRA presets, configs and counts on the real tiny BLIP-2 and on real BLIP-2 shapes (meta device)."
import pytest, torch
from torch import nn
from blip2_lora.models import load_model, meta_model, n_params, Blip2LoraError
from blip2_lora.lora import PRESETS, lora_config, preset_modules, count_lora_params, add_lora

LLM_PRESETS = [p for p, spec in PRESETS.items() if set(spec) == {'language_model'}]

@pytest.fixture(scope='module', params=['blip2-lora/tiny-opt', 'blip2-lora/tiny-t5'])
def tiny(request): return load_model(request.param)

def test_published_count():
    "peft's BLIP-2 default on blip2-opt-2.7b at r=16: 32 layers x 2 projections x 16 x (2560+2560)."
    assert count_lora_params('Salesforce/blip2-opt-2.7b', 'seed', r=16) == 5_242_880

@pytest.mark.parametrize('preset', LLM_PRESETS)
def test_llm_presets_stay_in_llm(tiny, preset):
    hit = preset_modules(tiny, preset)
    assert hit and all(n.startswith('language_model.') for n in hit)

def test_bare_names_trap():
    "Bare fc1/fc2 (peft suffix match) also hit the 39 ViT MLPs of blip2-opt-2.7b; the anchored preset does not."
    from peft.tuners.tuners_utils import check_target_module_exists
    from peft import LoraConfig
    m = meta_model('Salesforce/blip2-opt-2.7b')
    bare = LoraConfig(target_modules=['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'])
    vit = [n for n, x in m.named_modules() if isinstance(x, nn.Linear) and check_target_module_exists(bare, n) and n.startswith('vision_model.')]
    assert len(vit) == 2 * 39
    assert not any(n.startswith('vision_model.') for n in preset_modules(m, 'llm-all'))

@pytest.mark.parametrize('preset', list(PRESETS))
def test_add_lora_matches_count_and_is_identity(tiny, preset):
    torch.manual_seed(0)
    ids = torch.randint(4, 100, (2, 5))
    pix = torch.randn(2, 3, 32, 32)
    kw = dict(pixel_values=pix, input_ids=ids)
    if tiny.config.text_config.model_type == 't5': kw['decoder_input_ids'] = ids[:, :3]
    with torch.no_grad(): ref = tiny(**kw).logits
    count, names = count_lora_params(tiny, preset, r=4), preset_modules(tiny, preset)
    pm = add_lora(tiny, preset, r=4)  # wraps `tiny` in place; unloaded at the end
    try:
        assert n_params(pm, trainable=True) == count > 0
        wrapped = sorted(n.removeprefix('base_model.model.') for n, x in pm.named_modules() if hasattr(x, 'base_layer') and hasattr(x, 'lora_A'))
        assert wrapped == sorted(names)
        with torch.no_grad(): out = pm(**kw).logits
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)  # B starts at zero: a fresh adapter is the identity
    finally: pm.unload()

def test_bad_input():
    with pytest.raises(Blip2LoraError, match='choose one of'): lora_config('nope')
    with pytest.raises(Blip2LoraError, match='positive integer'): lora_config(r=-1)
    with pytest.raises(Blip2LoraError, match='not target_modules'): lora_config(target_modules=['q'])
    with pytest.raises(Blip2LoraError, match='OPT or T5'): add_lora(nn.Sequential(nn.Linear(2, 2)))

def test_add_lora_keeps_eval_mode_and_merge_parity():
    torch.manual_seed(1)
    m = load_model('blip2-lora/tiny-opt')
    kw = dict(pixel_values=torch.randn(2, 3, 32, 32), input_ids=torch.randint(4, 500, (2, 6)))
    pm = add_lora(m, 'llm-all', r=4, dropout=0.5, init_lora_weights=False)
    assert not any(x.training for x in pm.modules())
    with torch.no_grad(): a, b = pm(**kw).logits, pm(**kw).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # dropout off in eval
    merged = pm.merge_and_unload()
    # fp32 rounding of W0 + BA through the layers of the shipped (pretrained) tiny model: ~1e-5, against an adapter effect of ~10
    with torch.no_grad(): torch.testing.assert_close(merged(**kw).logits, a, rtol=0, atol=1e-4)

@pytest.mark.parametrize('quant', ['int8', 'nf4'])
def test_quantized_models_get_same_adapters(quant):
    "bitsandbytes layers (Linear8bitLt, Linear4bit) are hit exactly like their fp32 counterparts."
    fp, qm = load_model('blip2-lora/tiny-opt'), load_model('blip2-lora/tiny-opt', quant=quant)
    assert preset_modules(qm, 'llm-all') == preset_modules(fp, 'llm-all')
    pm = add_lora(qm, 'llm-all', r=4)
    assert n_params(pm, trainable=True) == count_lora_params(fp, 'llm-all', r=4)
    kw = dict(pixel_values=torch.randn(1, 3, 32, 32), input_ids=torch.randint(4, 500, (1, 6)))
    with torch.no_grad(): assert torch.isfinite(pm(**kw).logits).all()
