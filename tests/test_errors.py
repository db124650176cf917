"blip2_lora.errors: one error class every module shares (no torch), and no logging filter installed by an import."
import subprocess, sys, textwrap

def _run(code:str) -> str:
    "Run `code` in a fresh interpreter (nothing imported yet); its stdout, or the failure with stderr."
    r = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip()

def test_metrics_imports_no_torch():
    "`import blip2_lora.metrics` (and errors) loads neither torch nor transformers."
    out = _run("""
        import blip2_lora.metrics, blip2_lora.errors, sys
        print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))""")
    assert out == '[]', out

def test_same_class_everywhere():
    "`blip2_lora.models.Blip2LoraError` is the errors module's class, still in models' `__all__`; a raise from metrics is caught by either."
    import pytest
    import blip2_lora.errors as E, blip2_lora.models as M, blip2_lora.metrics as X
    assert M.Blip2LoraError is E.Blip2LoraError and 'Blip2LoraError' in M.__all__
    with pytest.raises(M.Blip2LoraError, match='no predictions'): X.caption_metrics([], [])

def test_checks():
    "positive_int / positive_float return good values and refuse bools, zero, nan, inf and strings with one line."
    import math, pytest
    from blip2_lora.errors import Blip2LoraError, positive_int, positive_float
    assert positive_int('r', 8) == 8 and positive_float('lr', 2e-4) == 2e-4
    for v in (0, -1, 1.0, True, '2', None):
        with pytest.raises(Blip2LoraError, match='r must be a positive integer'): positive_int('r', v)
    for v in (0, -1.0, math.nan, math.inf, True, '1', None):
        with pytest.raises(Blip2LoraError, match='lr must be a finite number > 0'): positive_float('lr', v)

def test_no_logging_filters_at_import():
    "Importing the package adds no filter to bitsandbytes' loggers; load_model(quant='int8') does, once, and the int8 cast notice is gone."
    out = _run("""
        import logging
        import torch; torch.set_num_threads(1)
        NOISY = ('bitsandbytes.autograd._functions', 'bitsandbytes.backends.cpu.ops')
        import blip2_lora.models, blip2_lora.lora, blip2_lora.metrics
        from blip2_lora.models import load_model, load_processor, to_device
        assert not any(logging.getLogger(n).filters for n in NOISY), 'filter installed at import time'
        seen = []
        class Keep(logging.Handler):
            def emit(self, record): seen.append(record.getMessage())
        logging.getLogger().addHandler(Keep())
        m = load_model(quant='int8'); load_model(quant='int8')
        assert [len(logging.getLogger(n).filters) for n in NOISY] == [1, 1], 'not installed once per logger'
        p = load_processor()
        from PIL import Image
        enc = to_device(p(images=[Image.new('RGB', (32, 32), 'red')], text=['a red'], return_tensors='pt'), m)
        with torch.no_grad(): m(**enc)
        assert not [s for s in seen if 'inputs will be cast' in s], seen
        probe = logging.makeLogRecord({'msg': 'MatMul8bitLt: inputs will be cast from %s to float16', 'args': ('torch.float32',)})
        print(logging.getLogger(NOISY[0]).filter(probe))""")
    assert out.splitlines()[-1] == 'False', out
