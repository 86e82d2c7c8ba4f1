"""training/clip.py: OpenAI's architecture and names, the checkpoint readers (TorchScript archives read as data,
open_clip files, downloads), the text and image encoders, gradients to the images, and the tokenizer against
CLIP's real token ids. A tiny random CLIP stands in for the real weights, which cannot be downloaded here."""

import copy
import gzip
import io
import json
import os
import socket
import sys
import types
import zipfile

import numpy as np
import PIL.Image
import pytest
import requests
import scipy.ndimage
import torch

import dnnlib
from training import clip

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = dict(embed_dim=32, image_size=32, patch_size=8, vision_width=128, vision_layers=2, context_length=16,
            vocab_size=100, text_width=64, text_layers=2)
EOT_ID = TINY["vocab_size"] - 1  # the end token is the largest id, as 49407 is in CLIP's vocabulary

# Token ids from the open_clip_torch 3.3.0 copy of OpenAI's tokenizer with the real merges file (identical with and
# without ftfy). Several agree with published examples: "a photo of a cat", "a diagram", "a dog", "A Photo of a
# TREE!", "it's a cat's toy, running   fast" and "2 dogs and 3 cats".
KNOWN_IDS = {
    "a photo of a cat": [320, 1125, 539, 320, 2368],
    "a dog": [320, 1929],
    "a diagram": [320, 22697],
    "A Photo of a TREE!": [320, 1125, 539, 320, 2677, 256],
    "it's a cat's toy, running   fast": [585, 568, 320, 2368, 568, 5988, 267, 2761, 1953],
    "2 dogs and 3 cats": [273, 3255, 537, 274, 3989],
    "a person with purple hair": [320, 2533, 593, 5496, 2225],
    "": [],
    "  Multiple\n\twhitespace  here ": [6470, 4699, 2138, 763],
    "Café naïve résumé — déjà vu": [15304, 1097, 35689, 563, 29106, 7054, 4166, 2005, 25466, 73, 21259, 13230],
    "emoji 🎂🐱 and 中文": [16327, 13026, 22979, 537, 19759, 255, 29032, 485],
    "tom &amp; jerry &lt;3": [2435, 261, 9164, 283, 274],
    "1024x1024 StyleGAN2-ADA's FID: 2.84": [272, 271, 273, 275, 343, 272, 271, 273, 275, 1421, 1211, 550, 273, 268,
                                            1886, 568, 23966, 281, 273, 269, 279, 275],
    "she'll've they're I'M": [1043, 1342, 1200, 889, 982, 328, 880],
    "mobileclip unbelievably photorealistic": [9451, 944, 8546, 33781, 1153, 16157],
}
SOT_ID, CLIP_EOT_ID = 49406, 49407


@pytest.fixture(scope="module")
def tiny():
    """A tiny CLIP whose every tensor is random (LayerNorms and biases too), so a lost tensor changes outputs."""
    torch.manual_seed(0)
    model = clip.CLIP(**TINY).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "ln" in name:
                param.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    return model


def make_tokens(n, eot_at, seed=0):
    """[n, context] random ids below EOT, EOT at eot_at, zero padding after it."""
    tokens = torch.randint(1, EOT_ID, (n, TINY["context_length"]), generator=torch.Generator().manual_seed(seed))
    tokens[:, eot_at] = EOT_ID
    tokens[:, eot_at + 1:] = 0
    return tokens


def make_images(n, size=TINY["image_size"], seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def assert_same_model(loaded, reference):
    expected = reference.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key].float()), key
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    images, tokens = make_images(2), make_tokens(2, eot_at=5)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(images), reference.encode_image(images))
        torch.testing.assert_close(loaded.encode_text(tokens), reference.encode_text(tokens))


def assert_one_line_user_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message

# ----------------------------------------------------------------------------
# Architecture.


def test_default_architecture_is_openai_vit_b_32():
    with torch.device("meta"):
        model = clip.CLIP()
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    # Published parameter counts of ViT-B/32: 151,277,313 in all, 87,849,216 in the image encoder.
    assert sum(p.numel() for p in model.parameters()) == 151277313
    assert sum(p.numel() for p in model.visual.parameters()) == 87849216
    assert shapes["visual.conv1.weight"] == (768, 3, 32, 32)
    assert shapes["visual.positional_embedding"] == (50, 768)
    assert shapes["visual.transformer.resblocks.11.attn.in_proj_weight"] == (2304, 768)
    assert shapes["visual.transformer.resblocks.11.attn.out_proj.weight"] == (768, 768)
    assert shapes["visual.transformer.resblocks.11.mlp.c_fc.weight"] == (3072, 768)
    assert shapes["visual.proj"] == (768, 512)
    assert shapes["token_embedding.weight"] == (49408, 512)
    assert shapes["positional_embedding"] == (77, 512)
    assert shapes["transformer.resblocks.11.mlp.c_proj.weight"] == (512, 2048)
    assert shapes["ln_final.weight"] == (512,) and shapes["text_projection"] == (512, 512)
    assert shapes["logit_scale"] == ()
    assert (model.config["vision_heads"], model.config["text_heads"]) == (12, 8)
    assert isinstance(model.transformer.resblocks[0].mlp.gelu, clip.QuickGELU)


def test_attention_is_nn_multihead_attention():
    # OpenAI's blocks use nn.MultiheadAttention (sequence-first, additive -inf mask above the diagonal).
    torch.manual_seed(0)
    reference = torch.nn.MultiheadAttention(64, 4).eval()
    ours = clip.SelfAttention(64, 4)
    ours.load_state_dict(reference.state_dict(), strict=True)  # the same parameter names
    x = torch.randn(2, 10, 64)
    mask = torch.full((10, 10), float("-inf")).triu(1)
    with torch.no_grad():
        for causal in (False, True):
            expected = reference(*[x.transpose(0, 1)] * 3, need_weights=False, attn_mask=mask if causal else None)
            torch.testing.assert_close(ours(x, causal), expected[0].transpose(0, 1))


def test_from_state_dict_reads_the_architecture_off_the_shapes(tiny):
    model = clip.CLIP.from_state_dict(tiny.state_dict())
    assert model.config == tiny.config
    assert_same_model(model.eval().requires_grad_(False), tiny)


def test_encoders_shapes_and_logits(tiny):
    images, tokens = make_images(2), make_tokens(3, eot_at=4)
    with torch.no_grad():
        assert tiny.encode_image(images).shape == (2, TINY["embed_dim"])
        assert tiny.encode_text(tokens).shape == (3, TINY["embed_dim"])
        per_image, per_text = tiny(images, tokens)
    assert per_image.shape == (2, 3) and torch.equal(per_text, per_image.t())
    with pytest.raises(ValueError, match=r"\[n, 3, 32, 32\]"):
        tiny.encode_image(make_images(2, size=64))
    with pytest.raises(ValueError, match="integer token ids"):
        tiny.encode_text(tokens.float())


def test_text_embedding_is_read_at_the_end_token(tiny):
    tokens = make_tokens(2, eot_at=5)
    changed = tokens.clone()
    changed[:, 6:] = torch.randint(1, EOT_ID, (2, TINY["context_length"] - 6))  # anything below EOT after it
    with torch.no_grad():
        torch.testing.assert_close(tiny.encode_text(changed), tiny.encode_text(tokens), rtol=0, atol=1e-6)
        changed[:, 3] = (tokens[:, 3] + 1) % EOT_ID  # a token before EOT does count
        assert not torch.allclose(tiny.encode_text(changed), tiny.encode_text(tokens))


def test_text_attention_is_causal(tiny):
    tokens = make_tokens(2, eot_at=10)
    changed = tokens.clone()
    changed[:, 6] = (tokens[:, 6] + 1) % EOT_ID
    with torch.no_grad():
        before, after = tiny.text_hidden_states(tokens), tiny.text_hidden_states(changed)
    torch.testing.assert_close(after[:, :6], before[:, :6], rtol=0, atol=1e-6)
    assert (after[:, 6:] - before[:, 6:]).abs().amax(dim=-1).min() > 1e-4  # every later position sees it


def test_gradients_flow_from_the_cosine_loss_to_generator_images(tiny):
    model = copy.deepcopy(tiny).requires_grad_(False)
    images = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1)).mul(2).sub(1).requires_grad_()
    with torch.no_grad():
        text = model.encode_text(make_tokens(1, eot_at=5))
    loss = clip.cosine_distance(model.encode_generator_images(images), text)
    assert loss.shape == (2,) and ((loss >= 0) & (loss <= 2)).all()
    loss.sum().backward()
    assert torch.isfinite(images.grad).all()
    assert (images.grad.flatten(1).abs().sum(dim=1) > 0).all()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("height, width", [(300, 400), (64, 64)])
def test_preprocessing_matches_clips_pil_pipeline(height, width):
    # CLIP's own preprocessing: PIL bicubic resize of the shorter side to 224, centre crop, ToTensor, Normalize.
    rng = np.random.RandomState(0)
    smooth = np.stack([scipy.ndimage.gaussian_filter(rng.rand(height, width), 4) for _ in range(3)])
    pixels = ((smooth - smooth.min()) / np.ptp(smooth) * 255).round().astype(np.uint8)
    new_width = 224 * width // height
    pil = PIL.Image.fromarray(pixels.transpose(1, 2, 0)).resize((new_width, 224), PIL.Image.BICUBIC)
    left = round((new_width - 224) / 2)
    reference = np.asarray(pil, dtype=np.float32)[:, left:left + 224].transpose(2, 0, 1) / 255
    generated = torch.from_numpy(pixels).float()[None] / 127.5 - 1  # the same image as a generator would give it
    ours = clip.preprocess_generator_images(generated, 224)[0].numpy()
    assert ours.shape == (3, 224, 224)
    ours = ours * np.array(clip.IMAGE_STD)[:, None, None] + np.array(clip.IMAGE_MEAN)[:, None, None]
    # PIL rounds to 8 bits (after each of its two passes: noise would differ more); otherwise the filters agree.
    assert np.abs(ours - reference).max() < 1.5 / 255


def test_preprocessing_of_grayscale_and_exact_size_images():
    gray = torch.full((1, 1, 224, 224), 0.5)
    out = clip.preprocess_generator_images(gray, 224)
    expected = (0.75 - torch.tensor(clip.IMAGE_MEAN)) / torch.tensor(clip.IMAGE_STD)
    torch.testing.assert_close(out, expected.view(1, 3, 1, 1).expand(1, 3, 224, 224))
    with pytest.raises(ValueError, match="3 or 1"):
        clip.preprocess_generator_images(torch.zeros(1, 4, 8, 8))

# ----------------------------------------------------------------------------
# Checkpoint files.


@pytest.fixture
def no_torchscript(monkeypatch):
    """Fail the test if anything loads TorchScript."""
    def refuse(*args, **kwargs):
        raise AssertionError("TorchScript was loaded")
    monkeypatch.setattr(torch.jit, "load", refuse)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_openai_torchscript_archive_is_read_as_data(tiny, tmp_path, no_torchscript):
    # As OpenAI's release: a traced model whose settings are buffers too.
    model = copy.deepcopy(tiny)
    del model.context_length  # a plain attribute here; register_buffer refuses to shadow it
    for name, value in (("input_resolution", 32), ("context_length", 16), ("vocab_size", 100)):
        model.register_buffer(name, torch.tensor(value))
    # Archives traced from open_clip models also hold its causal mask, a buffer that state_dict() leaves out.
    model.register_buffer("attn_mask", torch.full((16, 16), float("-inf")).triu(1), persistent=False)
    with torch.no_grad():
        traced = torch.jit.trace(model, (make_images(1), make_tokens(1, eot_at=3)), check_trace=False)
    path = tmp_path / "ViT-tiny.pt"
    traced.save(str(path))
    assert_same_model(clip.load_clip(path, device="cpu"), tiny)


class _ScriptModuleStandIn:
    """Pickled under the name of a TorchScript class that nothing can import."""


_ScriptModuleStandIn.__module__, _ScriptModuleStandIn.__qualname__ = "__torch__.evil", "Module"


def _explode():
    raise AssertionError("the archive ran code")


class _RunsCode:
    def __reduce__(self):
        return _explode, ()


def write_handmade_archive(path, state_dict, monkeypatch, extra=None):
    """A TorchScript-like archive: objects of classes named '__torch__.evil.Module' holding the tensors, written in
    torch.save's zip layout, plus constants.pkl and TorchScript code that would fail if it were run."""
    root = _ScriptModuleStandIn()
    for key, tensor in state_dict.items():
        obj = root
        *parents, name = key.split(".")
        for part in parents:
            obj = obj.__dict__.setdefault(part, _ScriptModuleStandIn())
        setattr(obj, name, tensor)
    root.training = False
    if extra is not None:
        root.extra = extra
    with monkeypatch.context() as patch:  # the pickler looks the class up by name; the reader must not
        patch.setitem(sys.modules, "__torch__", types.ModuleType("__torch__"))
        patch.setitem(sys.modules, "__torch__.evil", types.SimpleNamespace(Module=_ScriptModuleStandIn))
        torch.save(root, path)
    with zipfile.ZipFile(path, "a") as archive:
        folder = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{folder}/constants.pkl", b"\x80\x02).")
        archive.writestr(f"{folder}/code/__torch__/evil.py", "raise SystemExit('TorchScript code was run')\n")


def test_handmade_archive_with_unimportable_classes_loads(tiny, tmp_path, monkeypatch, no_torchscript):
    state = {key: value.detach().clone() for key, value in tiny.state_dict().items()}
    state["visual.proj"] = state["visual.proj"].half()  # OpenAI's archives hold float16 weights
    state["text_projection"] = state["text_projection"].t().contiguous().t()  # a strided view of its storage
    path = tmp_path / "handmade.pt"
    write_handmade_archive(path, state, monkeypatch)
    assert "__torch__.evil" not in sys.modules
    reference = copy.deepcopy(tiny)
    with torch.no_grad():
        reference.visual.proj.copy_(state["visual.proj"].float())
    assert_same_model(clip.load_clip(path, device="cpu"), reference)


def test_archive_that_would_run_code_is_refused(tiny, tmp_path, monkeypatch, no_torchscript):
    path = tmp_path / "evil.pt"
    write_handmade_archive(path, tiny.state_dict(), monkeypatch, extra=_RunsCode())
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip.load_clip(path, device="cpu")
    assert_one_line_user_error(excinfo, "refusing to load evil.pt", "_explode", "nothing in it was run")


@pytest.mark.parametrize("layout", ["plain", "training checkpoint", "laion with config"])
def test_open_clip_checkpoint(tiny, tmp_path, layout):
    state = tiny.state_dict()
    if layout == "training checkpoint":  # open_clip's epoch_N.pt: wrapped, with DistributedDataParallel prefixes
        state = {"epoch": 3, "state_dict": {f"module.{key}": value for key, value in state.items()}}
    if layout == "laion with config":  # the Hugging Face hub keeps open_clip_config.json beside the weights
        (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 32}}))
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(state, path)
    model = clip.load_clip(str(path), device="cpu")
    if layout == "laion with config":  # no '"quick_gelu": true' there: trained with nn.GELU
        assert isinstance(model.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)
        with torch.no_grad():
            assert not torch.allclose(model.encode_image(make_images(1)), tiny.encode_image(make_images(1)))
        model = clip.load_clip(path, device="cpu", quick_gelu=True)  # an explicit choice wins
    assert_same_model(model, tiny)


def test_safetensors_checkpoint(tiny, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "open_clip_model.safetensors"
    safetensors_torch.save_file({key: value.contiguous() for key, value in tiny.state_dict().items()}, str(path))
    assert_same_model(clip.load_clip(path, device="cpu"), tiny)


def test_urls_are_downloaded_once_into_the_cache(tiny, tmp_path, monkeypatch):
    buffer = io.BytesIO()
    torch.save(tiny.state_dict(), buffer)
    downloads = []

    def fake_download(url, num_attempts, verbose):
        downloads.append(url)
        return buffer.getvalue(), "open_clip_pytorch_model.bin"
    monkeypatch.setattr(dnnlib.util, "_download", fake_download)
    url = "https://example.com/clip/open_clip_pytorch_model.bin"
    for _ in range(2):
        assert_same_model(clip.load_clip(url, device="cpu", cache_dir=str(tmp_path)), tiny)
    assert downloads == [url]


def test_missing_file_and_offline_are_one_line_user_errors(tmp_path, monkeypatch):
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip.load_clip(tmp_path / "ViT-B-32.pt")
    assert_one_line_user_error(excinfo, "file not found", "ViT-B-32.pt", "--clip PATH")

    def offline(*args, **kwargs):
        raise requests.ConnectionError("offline") from socket.gaierror(-3, "Temporary failure in name resolution")
    monkeypatch.setattr(requests.Session, "get", offline)
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip.load_clip(cache_dir=str(tmp_path))
    assert_one_line_user_error(excinfo, "cannot resolve host 'openaipublic.azureedge.net'", "--clip PATH")
    monkeypatch.setattr(clip, "installed_bpe_path", lambda: None)
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip.load_bpe_merges(cache_dir=str(tmp_path))
    assert_one_line_user_error(excinfo, "raw.githubusercontent.com", "pip install --no-deps open_clip_torch")


def test_corrupt_download_of_the_default_weights_is_detected(tmp_path, monkeypatch):
    monkeypatch.setattr(dnnlib.util, "_download", lambda url, num_attempts, verbose: (b"<html>", "ViT-B-32.pt"))
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip.load_clip(cache_dir=str(tmp_path))
    assert_one_line_user_error(excinfo, "is corrupt", "SHA256", "--clip PATH")


def test_files_that_are_not_clip_checkpoints(tiny, tmp_path, monkeypatch):
    cases = {
        "garbage.pt": (b"not a checkpoint", "is not a readable CLIP checkpoint"),
        "other.bin": ({"encoder.weight": torch.zeros(2)}, "not a CLIP state dict with OpenAI's names"),
        "resnet.bin": ({"visual.attnpool.c_proj.weight": torch.zeros(2)}, "a ResNet CLIP"),
        "extra.bin": ({**tiny.state_dict(), "visual.extra": torch.zeros(1)}, "unexpected tensor 'visual.extra'"),
        "mismatch.bin": ({**tiny.state_dict(), "ln_final.bias": torch.zeros(3)}, "size mismatch"),
        "truncated.pt": (None, "not a valid TorchScript archive"),
    }
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        if content is None:  # a TorchScript archive whose storages are missing
            write_handmade_archive(tmp_path / "full.pt", tiny.state_dict(), monkeypatch)
            with zipfile.ZipFile(tmp_path / "full.pt") as full, zipfile.ZipFile(path, "w") as truncated:
                for item in full.infolist():
                    if "/data/" not in item.filename:
                        truncated.writestr(item, full.read(item))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        with pytest.raises(dnnlib.util.UserError) as excinfo:
            clip.load_clip(path, device="cpu")
        assert_one_line_user_error(excinfo, fragment)

# ----------------------------------------------------------------------------
# Tokenizer.


def write_merges(path, merges):
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def test_bpe_mechanics_on_a_tiny_merges_file(tmp_path):
    path = tmp_path / "tiny_bpe.txt.gz"
    write_merges(path, [("l", "o"), ("lo", "w</w>"), ("e", "r</w>"), ("lo", "w"), ("a", "a")])
    tokenizer = clip.Tokenizer(clip.load_bpe_merges(str(path)))
    assert tokenizer.vocab_size == 512 + 5 + 2 and (tokenizer.sot, tokenizer.eot) == (517, 518)
    assert tokenizer.bpe("low") == ["low</w>"]  # (l, o), then (lo, w</w>)
    assert tokenizer.bpe("lower") == ["low", "er</w>"]  # (l, o), then (e, r</w>) before (lo, w)
    assert tokenizer.bpe("aaaa") == ["aa", "a", "a</w>"]  # pairs merge left to right without overlapping
    # Byte tokens: printable ASCII from '!' first ('a' is 64), the same with '</w>' from 256 on.
    assert tokenizer.encode("Low LOWER a!") == [512 + 1, 512 + 3, 512 + 2, 256 + 64, 256]
    tokens = clip.tokenize(["low", "a"], context_length=5, bpe_path=str(path))
    assert tokens.dtype == torch.long and tokens.tolist() == [[517, 513, 518, 0, 0], [517, 320, 518, 0, 0]]


@pytest.fixture(scope="module")
def clip_tokenizer():
    """A tokenizer with CLIP's real ids for the KNOWN_IDS texts: the merges they use, from tests/data, at their
    real ranks, and filler merges of symbols no text can produce everywhere else."""
    merges = [(f"\u4e00{rank}", "\u4e01") for rank in range(clip.NUM_MERGES)]
    data = os.path.join(os.path.dirname(__file__), "data", "clip_bpe_subset.txt")
    with open(data, encoding="utf-8") as file:
        for line in file:
            if not line.startswith("#"):
                rank, first, second = line.split()
                merges[int(rank)] = (first, second)
    return clip.Tokenizer(merges)


def test_known_clip_token_ids(clip_tokenizer):
    assert clip_tokenizer.vocab_size == 49408 and (clip_tokenizer.sot, clip_tokenizer.eot) == (SOT_ID, CLIP_EOT_ID)
    for text, ids in KNOWN_IDS.items():
        assert clip_tokenizer.encode(text) == ids, text
    tokens = clip_tokenizer(list(KNOWN_IDS))
    assert tokens.shape == (len(KNOWN_IDS), 77) and tokens.dtype == torch.long
    for row, ids in zip(tokens.tolist(), KNOWN_IDS.values()):
        assert row == [SOT_ID, *ids, CLIP_EOT_ID] + [0] * (75 - len(ids))


def test_installed_vocabulary_gives_the_known_ids():
    if clip.installed_bpe_path() is None:
        pytest.skip("no package ships bpe_simple_vocab_16e6.txt.gz here (pip install --no-deps open_clip_torch)")
    tokens = clip.tokenize(list(KNOWN_IDS))
    for row, ids in zip(tokens.tolist(), KNOWN_IDS.values()):
        assert row[:len(ids) + 2] == [SOT_ID, *ids, CLIP_EOT_ID]


def test_texts_longer_than_the_context(clip_tokenizer):
    text = "a photo of a cat " * 20  # 100 tokens
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip_tokenizer(text)
    assert_one_line_user_error(excinfo, "102 tokens long", "context of 77", "shorten it")
    tokens = clip_tokenizer([text, "a dog"], truncate=True)
    assert tokens[0].tolist() == [SOT_ID] + (KNOWN_IDS["a photo of a cat"] * 16)[:75] + [CLIP_EOT_ID]
    assert tokens[1, :4].tolist() == [SOT_ID, 320, 1929, CLIP_EOT_ID]


def test_merges_file_errors(tmp_path):
    (tmp_path / "not_bpe.txt").write_text("hello\nworld\n")
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip.load_bpe_merges(str(tmp_path / "not_bpe.txt"))
    assert_one_line_user_error(excinfo, "is not a BPE merges file")
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        clip.load_bpe_merges(str(tmp_path / "missing.txt.gz"))
    assert_one_line_user_error(excinfo, "file not found", "pip install --no-deps open_clip_torch")
