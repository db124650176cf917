"""Every exported function and class of blip2_lora has a one-line docstring and a docments comment on each parameter.

That is what the docs pages show (show_doc renders both), so a missing one is a hole in the docs. Classes: the class
docstring and its own `__init__` parameters (dataclass fields included), plus every public method it defines.
"""
import importlib, inspect, pkgutil
import pytest
from fastcore.docments import docments
import blip2_lora

def _exported():
    for m in pkgutil.iter_modules(blip2_lora.__path__):
        if m.name.startswith('_'): continue
        mod = importlib.import_module(f'blip2_lora.{m.name}')
        for name in getattr(mod, '__all__', []):
            o = getattr(mod, name, None)
            if (inspect.isfunction(o) or inspect.isclass(o)) and o.__module__ == mod.__name__: yield f'{m.name}.{name}', o

def _params_without_docments(f):
    try: d = docments(f, full=True)
    except (TypeError, OSError, ValueError): return []
    sig = inspect.signature(f).parameters
    return [k for k, v in d.items() if k in sig and k not in ('self', 'cls') and not (v.get('docment') or '').strip()
            and sig[k].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]

def problems(name, o):
    out = []
    doc = (o.__doc__ or '').strip() if inspect.isfunction(o) or '__doc__' in vars(o) else ''
    if not doc: out.append(f'{name}: no docstring')
    elif '\n' in doc: out.append(f'{name}: docstring is not one line')
    if inspect.isclass(o):
        if issubclass(o, BaseException): return out
        init = vars(o).get('__init__')
        if init is not None and inspect.isfunction(init):
            fields = getattr(o, '__dataclass_fields__', None)
            missing = _params_without_docments(o if fields else init)
            out += [f'{name}(..., {p}): no docments comment' for p in missing]
        for mname, m in vars(o).items():
            if mname.startswith('_') or not inspect.isfunction(m): continue
            if not (m.__doc__ or '').strip(): out.append(f'{name}.{mname}: no docstring')
            out += [f'{name}.{mname}(..., {p}): no docments comment' for p in _params_without_docments(m)]
    else: out += [f'{name}(..., {p}): no docments comment' for p in _params_without_docments(o)]
    return out

EXPORTED = sorted(_exported())

def test_something_is_exported():
    assert len(EXPORTED) > 5

@pytest.mark.parametrize('name,o', EXPORTED, ids=[n for n, _ in EXPORTED])
def test_docstring_and_docments(name, o):
    bad = problems(name, o)
    assert not bad, '\n'.join(bad)
