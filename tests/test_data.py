"Data layer: synthetic generator, loaders and their errors, image normalisation, collator labels (OPT and T5)."
import json, warnings
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from blip2_lora.models import Blip2LoraError, load_model, load_processor
from blip2_lora.data import (synthetic, combos, captions, load_data, load_image, Collator, VQA_PROMPT,
                             is_encoder_decoder)

@pytest.fixture(scope='module')
def opt(): return load_processor('blip2-lora/tiny-opt')

@pytest.fixture(scope='module')
def t5(): return load_processor('blip2-lora/tiny-t5')

def _rows(n=3, seed=0, task='caption'): return list(synthetic(n, seed=seed, task=task))

# --- synthetic -------------------------------------------------------------------------------------------------
def test_synthetic_balanced_deterministic_heldout():
    ds = synthetic(48, seed=0)
    assert ds.column_names == ['image', 'text'] and len(set(ds['text'])) == 24
    assert all(ds['text'].count(c) == 2 for c in captions())
    assert synthetic(7, seed=4)['text'] == synthetic(7, seed=4)['text']
    a, b = synthetic(24, seed=0), synthetic(24, seed=1)
    assert not any(np.array_equal(np.asarray(x), np.asarray(y)) for x in a['image'] for y in b['image'])
    assert a[0]['image'].mode == 'RGB' and a[0]['image'].size == (64, 64)
    assert len(combos(colours=['red', 'green', 'blue', 'yellow', 'purple'])) == 30

def test_synthetic_vqa():
    ds = synthetic(12, seed=1, task='vqa')
    assert ds.column_names == ['image', 'question', 'answer']
    assert {'what colour is the shape?', 'what shape is it?', 'where is the shape?'} == set(ds['question'])

# --- loaders ---------------------------------------------------------------------------------------------------
def _imagefolder(d, ds, key='text', meta='metadata.jsonl'):
    d.mkdir(parents=True)
    lines = []
    for i, r in enumerate(ds):
        r['image'].save(d/f'{i}.png'); lines.append(json.dumps({'file_name': f'{i}.png', key: r['text']}))
    (d/meta).write_text('\n'.join(lines) + '\n')
    return d

def test_load_sources(tmp_path):
    src = synthetic(5, seed=3)
    f = _imagefolder(tmp_path/'f', src)
    src.save_to_disk(str(tmp_path/'disk'))
    for ds in (load_data(f), load_data(tmp_path/'disk'), load_data(f/'metadata.jsonl')):
        assert ds['text'] == src['text']
        assert np.array_equal(np.asarray(ds[2]['image']), np.asarray(src[2]['image']))
    g = _imagefolder(tmp_path/'g', src, key='caption')
    assert load_data(g, text_column='caption')['text'] == src['text']
    assert load_data('synthetic:10:2')['text'] == synthetic(10, 2)['text']

@pytest.mark.parametrize('case,msg', [
    ('missing', 'does not exist'), ('empty', 'is empty (0 rows)'), ('nocol', "has no 'text' column"),
    ('blank', "row 1 has an empty 'text'"), ('vqa', "has no 'question' column"), ('cut', '3.png is not a readable image'),
    ('nofile', '2.png does not exist'), ('nometa', 'neither a save_to_disk folder nor an imagefolder')])
def test_load_errors(tmp_path, case, msg):
    src = synthetic(5, seed=3)
    f = _imagefolder(tmp_path/'f', src, key='caption' if case == 'nocol' else 'text')
    task = 'vqa' if case == 'vqa' else 'caption'
    meta = f/'metadata.jsonl'
    if case == 'missing': f = tmp_path/'nope'
    if case == 'empty': meta.write_text('')
    if case == 'blank':
        ls = meta.read_text().splitlines(); ls[1] = json.dumps({'file_name': '1.png', 'text': ''}); meta.write_text('\n'.join(ls))
    if case == 'cut': (f/'3.png').write_bytes((f/'3.png').read_bytes()[:120])
    if case == 'nofile': (f/'2.png').unlink()
    if case == 'nometa': meta.unlink()
    with pytest.raises(Blip2LoraError, match=None) as e: load_data(f, task=task)
    assert msg in str(e.value) and '\n' not in str(e.value)

# --- images ----------------------------------------------------------------------------------------------------
def test_load_image_modes(tmp_path):
    rgba = Image.new('RGBA', (3, 3), (10, 20, 30, 0))
    assert np.asarray(load_image(rgba))[1, 1].tolist() == [255, 255, 255]
    Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)).save(tmp_path/'a.png')
    assert np.asarray(load_image(tmp_path/'a.png'))[0, :, 0].tolist() == [0, 255]
    p = Image.new('P', (2, 2)); p.putpalette([0, 0, 0, 9, 99, 199] + [0] * 762); p.putpixel((0, 0), 1)
    assert np.asarray(load_image(p))[0, 0].tolist() == [9, 99, 199]
    for m in ('L', '1', 'CMYK', 'LA', 'I', 'F'): assert load_image(Image.new(m, (4, 4))).mode == 'RGB'

def test_load_image_exif_and_bomb(tmp_path):
    im = Image.new('RGB', (40, 10)); ex = Image.Exif(); ex[0x0112] = 8
    im.save(tmp_path/'r.png', exif=ex.tobytes())
    assert load_image(tmp_path/'r.png').size == (10, 40)
    Image.new('L', (600, 600)).save(tmp_path/'big.png')
    with pytest.raises(Blip2LoraError, match='big.png has 600x600 pixels'): load_image(tmp_path/'big.png', max_pixels=100_000)

# --- collator --------------------------------------------------------------------------------------------------
def test_collator_opt_caption_tokens(opt):
    rows = _rows(3)
    b = Collator(opt)(rows)
    tok, nq, ph = opt.tokenizer, opt.num_query_tokens, opt.tokenizer.convert_tokens_to_ids('<image>')
    ref = opt(images=[r['image'] for r in rows], text=[r['text'] for r in rows], padding=True, return_tensors='pt')
    assert torch.equal(b['pixel_values'], ref.pixel_values)
    for i, r in enumerate(rows):
        n = int(ref.attention_mask[i].sum())
        ids, lab, am = b['input_ids'][i].tolist(), b['labels'][i].tolist(), b['attention_mask'][i].tolist()
        assert ids[:n] == ref.input_ids[i, :n].tolist() and ids[n] == tok.eos_token_id
        assert ids[:nq] == [ph] * nq and ids[nq] == tok.bos_token_id
        caption = tok(r['text'], add_special_tokens=False).input_ids
        assert lab == [-100] * (nq + 1) + caption + [tok.eos_token_id] + [-100] * (len(ids) - n - 1)
        assert am == [1] * (n + 1) + [0] * (len(ids) - n - 1)

def test_collator_opt_vqa_masks_prompt(opt):
    rows = _rows(3, task='vqa')
    b = Collator(opt, task='vqa')(rows)
    tok, nq = opt.tokenizer, opt.num_query_tokens
    for i, r in enumerate(rows):
        full = tok(VQA_PROMPT.format(question=r['question']) + ' ' + r['answer']).input_ids
        prompt = tok(VQA_PROMPT.format(question=r['question'])).input_ids
        ans = full[len(prompt):]
        assert tok.decode(ans) == ' ' + r['answer']
        lab = b['labels'][i].tolist()
        assert lab[:nq + len(prompt)] == [-100] * (nq + len(prompt))
        assert lab[nq + len(prompt):nq + len(full) + 1] == ans + [tok.eos_token_id]
        assert set(lab[nq + len(full) + 1:]) <= {-100}

def test_collator_t5(t5):
    rows = _rows(3, task='vqa')
    c = Collator(t5, task='vqa'); b = c(rows)
    assert c.encoder_decoder
    tok, nq = t5.tokenizer, t5.num_query_tokens
    ref = t5(images=[r['image'] for r in rows], text=[VQA_PROMPT.format(question=r['question']) for r in rows], padding=True, return_tensors='pt')
    assert torch.equal(b['input_ids'], ref.input_ids) and torch.equal(b['attention_mask'], ref.attention_mask)
    for i, r in enumerate(rows):
        want = tok(r['answer']).input_ids
        assert b['labels'][i].tolist() == want + [-100] * (b['labels'].shape[1] - len(want))
    cap = Collator(t5)(_rows(2))
    assert cap['input_ids'][:, :nq].eq(tok.convert_tokens_to_ids('<image>')).all()
    assert cap['input_ids'].shape[1] == nq + 1  # the image and T5's </s>: the caption is only in the labels

def test_family_detection(opt, t5):
    assert not is_encoder_decoder(opt) and is_encoder_decoder(t5)
    assert is_encoder_decoder(load_model('blip2-lora/tiny-t5').config) and not is_encoder_decoder(load_model().config)

def test_max_length_policy(opt, t5):
    rows = [dict(image=Image.new('RGB', (8, 8)), text='a red circle on the left ' * 6), dict(image=Image.new('RGB', (8, 8)), text='a dot')]
    for p in (opt, t5):
        c = Collator(p, max_length=10)
        with pytest.warns(UserWarning, match='1 of 2 rows have more than max_length=10 text tokens: they will be cut'): assert c.count_long(rows) == 1
        assert c.count_long(rows[1:], warn=False) == 0
        with pytest.warns(UserWarning, match='1 of 2 rows .* max_length=10'): b = c(rows)
        assert c.n_cut == 1 and b['attention_mask'].sum(1).max() <= 10 + p.num_query_tokens
        assert (b['labels'][0] != -100).sum() <= 10
        with pytest.raises(Blip2LoraError, match='1 of 2 rows have more than max_length=10'): Collator(p, max_length=10, overflow='error')(rows)
    with warnings.catch_warnings():
        warnings.simplefilter('error'); Collator(opt, max_length=64)(rows)  # long enough: no warning

@pytest.mark.parametrize('name', ['blip2-lora/tiny-opt', 'blip2-lora/tiny-t5'])
def test_loss_depends_on_image(name):
    "The collator's batch makes the loss depend on the image: swapping the images changes each row's loss."
    torch.manual_seed(0)
    model, proc = load_model(name), load_processor(name)
    rows = _rows(4, seed=7)
    c = Collator(proc)
    def losses(rs):
        b = c(rs)
        with torch.no_grad(): return torch.stack([model(**{k: v[i:i+1] for k, v in b.items()}).loss for i in range(len(rs))])
    base = losses(rows)
    swapped = losses([dict(image=rows[(i + 1) % 4]['image'], text=r['text']) for i, r in enumerate(rows)])
    assert (base - swapped).abs().min() > 1e-4, (base, swapped)
    again = losses(rows)
    assert torch.allclose(base, again)

@pytest.mark.parametrize('name,task', [('blip2-lora/tiny-opt', 'caption'), ('blip2-lora/tiny-opt', 'vqa'), ('blip2-lora/tiny-t5', 'vqa')])
def test_masks_match_model_loss(name, task):
    "Cross-entropy by hand over exactly the unmasked label positions equals the model's loss."
    model, proc = load_model(name), load_processor(name)
    b = Collator(proc, task=task)(_rows(3, seed=2, task=task))
    with torch.no_grad(): out = model(**b)
    if model.config.use_decoder_only_language_model: logits, lab = out.logits[:, :-1], b['labels'][:, 1:]
    else: logits, lab = out.logits, b['labels']
    keep = lab != -100
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(logits[keep], lab[keep]), atol=1e-5)

def test_vqa_answer_lists_and_hub_offline(opt, monkeypatch):
    row = dict(image=Image.new('RGB', (8, 8)), question='how many?', answer=['two', '2', 'two'])
    b = Collator(opt, task='vqa')([row])
    lab = b['labels'][0]
    assert opt.tokenizer.decode(lab[lab != -100]) == ' two</s>'
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')  # nothing listens there: the Hub is unreachable
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    with pytest.raises(Blip2LoraError, match="'nobody/no-such-data' is not a local folder and the Hugging Face Hub is unreachable"):
        load_data('nobody/no-such-data')

def test_load_image_bomb_header_and_truncated_jpeg():
    import io, struct, zlib
    b = io.BytesIO(); Image.new('L', (8, 8)).save(b, 'PNG'); png = bytearray(b.getvalue())
    png[16:24] = struct.pack('>II', 100_000, 100_000); png[29:33] = struct.pack('>I', zlib.crc32(bytes(png[12:29])))
    with pytest.raises(Blip2LoraError, match='x.png is refused as a decompression bomb'): load_image(bytes(png), name='x.png')
    png[16:24] = struct.pack('>II', 10_000, 10_000); png[29:33] = struct.pack('>I', zlib.crc32(bytes(png[12:29])))
    with pytest.raises(Blip2LoraError, match='y.png has 10000x10000 pixels, more than max_pixels=89,478,485'): load_image(bytes(png), name='y.png')
    j = io.BytesIO(); Image.effect_noise((64, 64), 50).convert('RGB').save(j, 'JPEG')
    for cut in (600, len(j.getvalue()) // 2):
        with pytest.raises(Blip2LoraError, match='(?i)h.jpg is not a readable image .*truncated'): load_image(j.getvalue()[:cut], name='h.jpg')

# --- issue 15: paths outside the data folder, special-token text -----------------------------------------------
@pytest.mark.parametrize('fmt', ['jsonl', 'csv'])
def test_imagefolder_refuses_paths_outside(tmp_path, fmt):
    src = synthetic(3, seed=3)
    f = _imagefolder(tmp_path/'f', src)
    (f/'sub').mkdir(); src[0]['image'].save(f/'sub'/'s.png'); src[1]['image'].save(tmp_path/'outside.png')
    ok = [{'file_name': 'sub/s.png', 'text': 'a'}, {'file_name': 'sub/../1.png', 'text': 'b'}, {'file_name': str(f/'2.png'), 'text': 'c'}]
    def write(rows):
        (f/'metadata.jsonl').unlink(missing_ok=True); (f/'metadata.csv').unlink(missing_ok=True)
        if fmt == 'jsonl': (f/'metadata.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
        else: (f/'metadata.csv').write_text('file_name,text\n' + ''.join(f"{r['file_name']},{r['text']}\n" for r in rows))
    write(ok); assert load_data(f)['text'] == ['a', 'b', 'c']       # inside the folder, however written: fine
    for bad in ('../outside.png', str(tmp_path/'outside.png'), 'sub/../../outside.png'):
        write(ok[:1] + [{'file_name': bad, 'text': 'x'}])
        with pytest.raises(Blip2LoraError) as e: load_data(f)
        msg = str(e.value)
        assert f"row 1 (line {2 if fmt == 'jsonl' else 3})" in msg and repr(bad) in msg and 'outside' in msg and '\n' not in msg, msg

SPECIAL = 'a <image> red </s> circle <pad> on the <unk> left'

@pytest.mark.parametrize('name,task', [('blip2-lora/tiny-opt', 'caption'), ('blip2-lora/tiny-opt', 'vqa'),
                                       ('blip2-lora/tiny-t5', 'caption'), ('blip2-lora/tiny-t5', 'vqa')])
def test_special_token_text_is_plain_text(name, task):
    "Captions, questions and answers holding special tokens' text: exactly num_query_tokens placeholders, labels decode to the text."
    proc = load_processor(name); tok, nq = proc.tokenizer, proc.num_query_tokens
    im = _rows(2, seed=4)
    if task == 'caption': rows = [dict(image=im[0]['image'], text=SPECIAL), dict(image=im[1]['image'], text='<image>')]
    else: rows = [dict(image=im[0]['image'], question='is <image> a </s>?', answer=SPECIAL), dict(image=im[1]['image'], question='<pad>', answer='</s>')]
    c = Collator(proc, task=task); b = c(rows)
    assert (b['input_ids'] == c.image_token_id).sum(1).tolist() == [nq, nq]
    assert (b['input_ids'][:, :nq] == c.image_token_id).all()
    for i, r in enumerate(rows):
        lab = b['labels'][i][b['labels'][i] != -100].tolist()
        assert lab[-1] == c.eos_token_id and c.eos_token_id not in lab[:-1] and tok.pad_token_id not in lab
        assert tok.decode(lab[:-1]).strip() == (r['text'] if task == 'caption' else r['answer'])
        if task == 'vqa' and not c.encoder_decoder:
            n = int(b['attention_mask'][i].sum())
            assert tok.decode(b['input_ids'][i, nq:n]) == f"</s>Question: {r['question']} Answer: {r['answer']}</s>"
    assert c.count_long(rows, warn=False) == 0
    with torch.no_grad(): load_model(name)(**b)      # was: RuntimeError (image features and placeholders differ)

# --- issue 18: COCO captions, VQAv2 and chat JSONL as published -------------------------------------------------
from blip2_lora.data import draw_shape, caption_of, open_source

def _coco_fixture(root, n=3):
    "COCO 2014 layout: annotations/captions_val2014.json (5 captions per image, shuffled) + val2014/COCO_val2014_<id>.jpg."
    (root/'annotations').mkdir(parents=True); (root/'val2014').mkdir()
    rng, images, anns = __import__('random').Random(1), [], []
    for k, (c, s, p) in enumerate(combos()[:n * 5:5]):
        iid = 100 + k; fn = f'COCO_val2014_{iid:012d}.jpg'
        draw_shape(c, s, p, 48, rng).save(root/'val2014'/fn, quality=95)
        images.append({'license': 1, 'file_name': fn, 'coco_url': '', 'height': 48, 'width': 48, 'date_captured': '', 'flickr_url': '', 'id': iid})
        for t in (caption_of(c, s, p), f'a {c} {s}', f'A {c} {s}.', f'the {s} is {c}', f'a {s} in {c} on white'):
            anns.append({'image_id': iid, 'id': len(anns), 'caption': t})
    rng.shuffle(anns)
    f = root/'annotations'/'captions_val2014.json'
    f.write_text(json.dumps({'info': {}, 'licenses': [], 'images': images, 'annotations': anns}))
    return f

_ANS = [['red'] * 4 + ['orange'] * 3 + ['dark red'] * 3, ['round'] * 9 + ['circle'], ['2', '2'] + ['3'] * 8]

def _vqa_fixture(root, subset='val2014', naming=2014):
    root.mkdir(parents=True); qs, anns = [], []
    for k, a in enumerate(_ANS):
        iid = 7 + k; draw_shape(*combos()[k], 48).save(root/(f'COCO_{subset}_{iid:012d}.jpg' if naming == 2014 else f'{iid:012d}.jpg'))
        qs.append({'image_id': iid, 'question': 'What colour is it?', 'question_id': iid * 1000 + 1})
        anns.append({'question_id': iid * 1000 + 1, 'image_id': iid, 'question_type': 'what', 'answer_type': 'other', 'multiple_choice_answer': a[0],
                     'answers': [{'answer': x, 'answer_confidence': 'yes', 'answer_id': j + 1} for j, x in enumerate(a)]})
    q, an = root/f'v2_OpenEnded_mscoco_{subset}_questions.json', root/f'v2_mscoco_{subset}_annotations.json'
    q.write_text(json.dumps({'info': {}, 'task_type': 'Open-Ended', 'data_type': 'mscoco', 'license': {}, 'data_subtype': subset, 'questions': qs}))
    an.write_text(json.dumps({'info': {}, 'license': {}, 'data_subtype': subset, 'data_type': 'mscoco', 'annotations': anns}))
    return q, an

def _chat_fixture(root):
    (root/'img').mkdir(parents=True)
    for k in range(3): draw_shape(*combos()[k], 48).save(root/'img'/f'{k}.png')
    rows = [{'messages': [{'role': 'user', 'content': '<image>What colour is it?'}, {'role': 'assistant', 'content': 'red'},
                          {'role': 'user', 'content': 'And the shape?'}, {'role': 'assistant', 'content': 'circle'}], 'images': ['img/0.png']},
            {'messages': [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Describe it.'}]},
                          {'role': 'assistant', 'content': [{'type': 'text', 'text': caption_of(*combos()[1])}]}], 'images': ['img/1.png']},
            {'id': 'x', 'image': 'img/2.png', 'conversations': [{'from': 'human', 'value': '<image>\nWhat is it?'}, {'from': 'gpt', 'value': 'a square'}]}]
    f = root/'data.jsonl'; f.write_text(''.join(json.dumps(r) + '\n' for r in rows)); return f

def _paths(ds): return [x['path'] for x in ds.cast_column('image', __import__('datasets').Image(decode=False))['image']]

def test_formats_load(tmp_path):
    f = _coco_fixture(tmp_path/'coco')
    ds = load_data(f'coco:{f}')
    assert len(ds) == 15 and len(set(_paths(ds))) == 3 and ds.column_names == ['image', 'text']
    assert load_data(f)['text'] == ds['text'] == [a['caption'] for a in json.loads(f.read_text())['annotations']]
    assert load_data(f'coco:{f}:{tmp_path/"coco"/"val2014"}')['text'] == ds['text']
    q, a = _vqa_fixture(tmp_path/'vqa')
    v = load_data(f'vqav2:{q}:{a}', task='vqa')
    assert v['answer'] == _ANS and v['question'] == ['What colour is it?'] * 3 and v[0]['image'].size == (48, 48)
    q17, a17 = _vqa_fixture(tmp_path/'vqa17', naming=2017)          # 2017 file names: 000000000007.jpg
    assert load_data(f'vqav2:{q17}:{a17}', task='vqa')['answer'] == _ANS
    c = _chat_fixture(tmp_path/'chat')
    cv, cc = load_data(c, task='vqa'), load_data(f'chat:{c}')
    assert cv['question'] == ['What colour is it?', 'And the shape?', 'Describe it.', 'What is it?']
    assert cv['answer'] == cc['text'] == ['red', 'circle', caption_of(*combos()[1]), 'a square']
    assert _paths(cc)[0] == _paths(cc)[1] == str(tmp_path/'chat'/'img'/'0.png')
    with pytest.raises(Blip2LoraError, match="this is VQA data, use task=\"vqa\""): load_data(f'vqav2:{q}:{a}')
    assert len(open_source(f'coco:{f}', 'train')[0]) == 15         # blip2_lora.batch's entry point reads them too

_N = iter(range(10**6))
def _bad(src, edit):
    "An edited copy of the JSON file `src`, next to it (a new name each time)."
    d = json.loads(src.read_text()); edit(d); out = src.with_name(f'bad{next(_N)}_{src.name}'); out.write_text(json.dumps(d)); return out

def test_formats_errors(tmp_path):
    f = _coco_fixture(tmp_path/'coco'); im = tmp_path/'coco'/'val2014'
    q, a = _vqa_fixture(tmp_path/'vqa'); c = _chat_fixture(tmp_path/'chat')
    first = c.read_text().splitlines()[0]
    def chat(row): p = tmp_path/'chat'/f'bad{next(_N)}.jsonl'; p.write_text(first + '\n' + row + '\n'); return p
    def row(**kw): r = json.loads(first); r.update(kw); return json.dumps(r)
    cases = [
        (f'coco:{_bad(f, lambda d: d.pop("images"))}:{im}', 'caption', "_captions_val2014.json has no 'images' key"),
        (f'coco:{_bad(f, lambda d: d["images"][0].pop("file_name"))}:{im}', 'caption', "images[0] has no 'file_name' key"),
        (f'coco:{_bad(f, lambda d: d["annotations"][2].pop("image_id"))}:{im}', 'caption', "annotations[2] has no 'image_id' key"),
        (f'coco:{_bad(f, lambda d: d["annotations"][4].update(image_id=5))}:{im}', 'caption', 'annotations[4] has image_id 5, which is not in its "images" list'),
        (f'coco:{_bad(f, lambda d: d["images"][2].update(file_name="nope.jpg"))}:{im}', 'caption', f'image id 102 has no image file (looked for {im/"nope.jpg"})'),
        (f'coco:{_bad(f, lambda d: d["images"][2].update(file_name="../../x.jpg"))}:{im}', 'caption', "has file_name '../../x.jpg', outside the image folder"),
        (f'vqav2:{_bad(q, lambda d: d.pop("questions"))}:{a}', 'vqa', "has no 'questions' key"),
        (f'vqav2:{_bad(q, lambda d: d["questions"][1].pop("question"))}:{a}', 'vqa', "questions[1] has no 'question' key"),
        (f'vqav2:{q}:{_bad(a, lambda d: d["annotations"][0].pop("answers"))}', 'vqa', "annotations[0] has no 'answers' key"),
        (f'vqav2:{q}:{_bad(a, lambda d: d["annotations"][2]["answers"][3].pop("answer"))}', 'vqa', "annotations[2].answers[3] has no 'answer' key"),
        (f'vqav2:{q}:{_bad(a, lambda d: d["annotations"][1].update(question_id=1))}', 'vqa', 'annotations[1] has question_id 1, which is not in'),
        (f'vqav2:{q}:{_bad(a, lambda d: d["annotations"].pop())}', 'vqa', 'question_id 9001 has no annotation in'),
        (f'vqav2:{_bad(q, lambda d: d["questions"][0].update(image_id=55))}:{a}', 'vqa', f"image id 55 has no image file (looked for {tmp_path/'vqa'/'COCO_val2014_000000000055.jpg'}"),
        (f'vqav2:{q}', 'vqa', "bad vqav2 source"), (str(q), 'vqa', 'is a VQAv2 questions file'), (str(a), 'vqa', 'looks like VQAv2 annotations'),
        (str(chat(row(messages=json.loads(first)['messages'][:1]))), 'caption', '.jsonl line 2 has no assistant turn'),
        (str(chat(row(images=['img/0.png', 'img/1.png']))), 'caption', '.jsonl line 2 has 1 <image> tag(s) but 2 image(s)'),
        (str(chat(row(images=[]))), 'caption', '.jsonl line 2 has 1 <image> tag(s) but 0 image(s)'),
        (str(chat(json.dumps({'images': ['img/0.png']}))), 'caption', ".jsonl line 2 has no 'messages' key"),
        (str(chat(row(images=['img/9.png']))), 'caption', '.jsonl line 2 image has no image file'),
        (str(chat(row(images=['https://x.org/a.png']))), 'caption', 'is not a local file path'),
        (str(chat('{"messages": [')), 'caption', '.jsonl line 2 is not valid JSON'),
    ]
    (tmp_path/'b.json').write_text('{"images": [],\n\n "annotations": [}')
    cases.append((f'coco:{tmp_path/"b.json"}', 'caption', 'b.json line 3 is not valid JSON'))
    for src, task, msg in cases:
        with pytest.raises(Blip2LoraError) as e: load_data(src, task=task)
        assert msg in str(e.value) and '\n' not in str(e.value), (msg, str(e.value))

def test_formats_metrics_match_pycocoevalcap(tmp_path):
    "evaluate() on COCO rows (one per caption) scores each image once against its 5 captions: pycocoevalcap's numbers."
    import contextlib, io, shutil
    from pycocotools.coco import COCO
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from blip2_lora.metrics import vqa_accuracy, coco_tokenize
    from blip2_lora.infer import evaluate, caption
    f = _coco_fixture(tmp_path/'coco'); ds = load_data(f'coco:{f}')
    model, proc = load_model(), load_processor()
    m = evaluate(model, proc, ds, max_new_tokens=12)
    assert m['n_images'] == 3
    gt = json.loads(f.read_text())
    preds = caption(model, proc, [str(tmp_path/'coco'/'val2014'/im['file_name']) for im in gt['images']], max_new_tokens=12)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(str(f)); cr = cg.loadRes([{'image_id': im['id'], 'caption': p} for im, p in zip(gt['images'], preds)])
    ids = [im['id'] for im in gt['images']]
    gts, res = {i: cg.imgToAnns[i] for i in ids}, {i: cr.imgToAnns[i] for i in ids}
    if shutil.which('java'): gts, res = PTBTokenizer().tokenize(gts), PTBTokenizer().tokenize(res)
    else: gts, res = ({i: [coco_tokenize(x['caption']) for x in v] for i, v in d.items()} for d in (gts, res))
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0); cider, _ = Cider().compute_score(gts, res)
    for k in range(4): assert abs(m[f'bleu{k+1}'] - bleu[k]) < 1e-9, (k, m, bleu)
    assert abs(m['cider'] - cider) < 1e-9 and m['cider'] > 0, (m, cider)
    q, a = _vqa_fixture(tmp_path/'vqa')
    v = vqa_accuracy(['orange', 'circle', 'Two'], load_data(f'vqav2:{q}:{a}', task='vqa')['answer'])
    assert abs(v['vqa_accuracy'] - (0.9 + 0.3 + 0.6) / 3) < 1e-12     # by hand: (3*2/3+7)/10, 9*(1/3)/10, (2*1/3+8*2/3)/10

def test_formats_train(tmp_path):
    from blip2_lora.train import finetune
    c = _chat_fixture(tmp_path/'chat')
    finetune(data=str(c), task='vqa', output=tmp_path/'run', max_steps=2, batch_size=2, save_steps=10)
    assert (tmp_path/'run').is_dir()
