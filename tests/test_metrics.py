"Metrics against pycocoevalcap's scorers and the VQAv2 rules, on random captions."
import random
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from blip2_lora.metrics import caption_metrics, vqa_accuracy, vqa_normalize, coco_tokenize
from blip2_lora.models import Blip2LoraError

WORDS = 'a the man dog cat red blue sitting on table riding wave two giraffes field next to each other'.split()

def _sent(rng, n): return ' '.join(rng.choice(WORDS) for _ in range(n))

def test_caption_metrics_equal_library_on_random_corpus():
    rng = random.Random(0)
    preds = [_sent(rng, rng.randint(3, 9)) for _ in range(20)]
    refs = [[_sent(rng, rng.randint(4, 10)) for _ in range(rng.randint(1, 5))] for _ in range(20)]
    m = caption_metrics([p.upper() + '.' for p in preds], refs)   # case and final period are tokenized away
    gts, res = {i: r for i, r in enumerate(refs)}, {i: [p] for i, p in enumerate(preds)}
    b, _ = Bleu(4).compute_score(gts, res, verbose=0)
    c, _ = Cider().compute_score(gts, res)
    assert [m[f'bleu{k}'] for k in range(1, 5)] == pytest.approx(b, abs=1e-12)
    assert m['cider'] == pytest.approx(c, abs=1e-12) and m['n'] == 20 and 0 < m['cider']

def test_exact_match_and_errors():
    assert caption_metrics(['A dog!', 'a cat'], [['a dog', 'x'], 'a red cat'])['exact_match'] == 0.5
    with pytest.raises(Blip2LoraError, match='2 predictions but 1 references'): caption_metrics(['a', 'b'], ['a'])
    with pytest.raises(Blip2LoraError, match='no predictions'): caption_metrics([], [])

def test_tokenize_clitics_and_brackets():
    assert coco_tokenize("The dog's toy (red) isn't here.") == "the dog 's toy -lrb- red -rrb- is n't here"

def test_vqa():
    assert vqa_normalize('The two dogs.') == '2 dogs'
    ten = ['yes'] * 3 + ['no'] * 7
    assert vqa_accuracy(['Yes'], [ten])['vqa_accuracy'] == pytest.approx((7 * 1 + 3 * 2 / 3) / 10)
    assert vqa_accuracy(['no', 'maybe'], [ten, 'yes'])['vqa_accuracy'] == pytest.approx(0.5)
