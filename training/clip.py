"""CLIP ViT-B/32 (Radford et al. 2021) in plain PyTorch, for text-driven latent editing (StyleCLIP).

Usage: encode a prompt once, then the generator's images at every step, and minimise 1 - cosine similarity; the
image path (`preprocess_generator_images` and the image encoder) is differentiable, so gradients reach the latents:

    model = load_clip(path_or_url)                                     # eval mode, weights frozen
    text = model.encode_text(tokenize(["a person with purple hair"]).to(device))
    loss = cosine_distance(model.encode_generator_images(images), text).mean()  # images in [-1, 1], any size

The modules and parameter names are OpenAI's (`visual.conv1.weight`, `visual.transformer.resblocks.N.attn.
in_proj_weight`, `token_embedding.weight`, `ln_final`, `text_projection`, `logit_scale`, ...), so released weights
load with `load_state_dict(strict=True)`. `load_clip` reads OpenAI's TorchScript release (`ViT-B-32.pt`) as data,
without running any of the TorchScript code it contains, and open_clip's checkpoints (`.bin`, `.safetensors`).

The tokenizer is CLIP's byte-level BPE. Its merges file (`bpe_simple_vocab_16e6.txt.gz`) comes from an installed
`open_clip_torch` package (`pip install --no-deps open_clip_torch` ships it without pulling in torchvision), from a
given path, or from OpenAI's repository through the download cache.
"""

import collections
import gzip
import hashlib
import html
import importlib.util
import json
import os
import pickle
import re
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

import dnnlib
from dnnlib import torch_archive

try:  # OpenAI's tokenizer repairs broken Unicode with ftfy first; it changes nothing in ordinary prompts
    import ftfy
except ImportError:
    ftfy = None

OPENAI_VIT_B_32_URL = ("https://openaipublic.azureedge.net/clip/models/"
                       "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt")
BPE_URL = "https://raw.githubusercontent.com/openai/CLIP/main/clip/bpe_simple_vocab_16e6.txt.gz"
BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"  # also open_clip's copy
BPE_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"

# The statistics CLIP's training images were normalised with (OpenAI's preprocessing, open_clip's defaults).
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

CONTEXT_LENGTH = 77
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
NUM_MERGES = 49152 - 256 - 2  # 48894: the 49408-token vocabulary is 2 x 256 byte tokens, the merges and SOT, EOT

_WEIGHTS_HELP = ("pass the path of a local copy (OpenAI's ViT-B-32.pt or open_clip's open_clip_pytorch_model.bin), "
                 "e.g. --clip PATH")

# ----------------------------------------------------------------------------
# The network.


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the GELU approximation OpenAI's CLIP was trained with (the weights expect it)."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with nn.MultiheadAttention's parameters (q, k, v stacked in `in_proj_weight`, then
    `out_proj`), so OpenAI's names load unchanged; batch-first, computed by scaled_dot_product_attention."""

    def __init__(self, width, heads):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, causal):
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(n, length, 3, self.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [n, heads, length, head width]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(y.transpose(1, 2).reshape(n, length, width))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)) with a 4x wide MLP."""

    def __init__(self, width, heads, quick_gelu):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(collections.OrderedDict([
            ("c_fc", nn.Linear(width, 4 * width)),
            ("gelu", QuickGELU() if quick_gelu else nn.GELU()),
            ("c_proj", nn.Linear(4 * width, width)),
        ]))

    def forward(self, x, causal):
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of residual attention blocks; `causal` lets each position see only itself and earlier ones."""

    def __init__(self, width, layers, heads, quick_gelu):
        super().__init__()
        self.width = width
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, quick_gelu) for _ in range(layers)])
        # OpenAI's initialisation; only random-weight models (tests) keep it.
        proj_std = width ** -0.5 * (2 * layers) ** -0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=width ** -0.5)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.zeros_(block.attn.out_proj.bias)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    def forward(self, x, causal=False):
        for block in self.resblocks:
            x = block(x, causal)
        return x


class VisionTransformer(nn.Module):
    """ViT image encoder: patches -> class token + patch tokens -> transformer -> class token -> embedding."""

    def __init__(self, image_size, patch_size, width, layers, heads, embed_dim, quick_gelu):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch_size}")
        self.image_size = image_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, quick_gelu)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [n, grid * grid, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    """CLIP with a ViT image encoder and a causal text transformer; defaults are ViT-B/32.

    Heads default to width / 64, as in every OpenAI model (and as `from_state_dict` must assume: heads leave no
    trace in the weights). `quick_gelu=False` gives nn.GELU, for open_clip models trained with it (e.g. LAION's
    laion2b_s34b_b79k)."""

    def __init__(self, embed_dim=512, image_size=224, patch_size=32, vision_width=768, vision_layers=12,
                 context_length=CONTEXT_LENGTH, vocab_size=49408, text_width=512, text_layers=12, quick_gelu=True,
                 vision_heads=None, text_heads=None):
        super().__init__()
        self.config = dict(embed_dim=embed_dim, image_size=image_size, patch_size=patch_size,
                           vision_width=vision_width, vision_layers=vision_layers, context_length=context_length,
                           vocab_size=vocab_size, text_width=text_width, text_layers=text_layers,
                           quick_gelu=quick_gelu, vision_heads=vision_heads or vision_width // 64,
                           text_heads=text_heads or text_width // 64)
        self.image_size = image_size
        self.context_length = context_length
        self.visual = VisionTransformer(image_size, patch_size, vision_width, vision_layers,
                                        self.config["vision_heads"], embed_dim, quick_gelu)
        self.transformer = Transformer(text_width, text_layers, self.config["text_heads"], quick_gelu)
        self.token_embedding = nn.Embedding(vocab_size, text_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, text_width))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.empty(text_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(1 / 0.07).log())
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=text_width ** -0.5)

    @classmethod
    def from_state_dict(cls, state_dict, quick_gelu=True, source="the state dict"):
        """A CLIP whose architecture is read off the shapes in an OpenAI-named state dict (as OpenAI's
        build_model does), with those weights loaded strictly. Raises UserError for anything else."""
        required = ("visual.conv1.weight", "visual.positional_embedding", "visual.proj", "token_embedding.weight",
                    "positional_embedding", "ln_final.weight", "text_projection")
        missing = [key for key in required if key not in state_dict]
        if missing:
            kind = "a ResNet CLIP (only ViT models are supported)" if "visual.attnpool.c_proj.weight" in state_dict \
                else f"not a CLIP state dict with OpenAI's names (found e.g. {', '.join(list(state_dict)[:3])})"
            raise dnnlib.util.UserError(f"{source} has no '{missing[0]}': {kind}")

        def count_layers(prefix):
            pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
            return len({match.group(1) for match in map(pattern.match, state_dict) if match})

        conv = state_dict["visual.conv1.weight"]  # [width, 3, patch, patch]
        grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        model = cls(embed_dim=state_dict["text_projection"].shape[1], image_size=conv.shape[-1] * grid,
                    patch_size=conv.shape[-1], vision_width=conv.shape[0],
                    vision_layers=count_layers("visual.transformer.resblocks."),
                    context_length=state_dict["positional_embedding"].shape[0],
                    vocab_size=state_dict["token_embedding.weight"].shape[0],
                    text_width=state_dict["ln_final.weight"].shape[0],
                    text_layers=count_layers("transformer.resblocks."), quick_gelu=quick_gelu)
        expected = model.state_dict().keys()
        unexpected = [key for key in state_dict if key not in expected]
        absent = [key for key in expected if key not in state_dict]
        if unexpected or absent:
            problem = f"lacks '{absent[0]}'" if absent else f"has an unexpected tensor '{unexpected[0]}'"
            raise dnnlib.util.UserError(f"{source} does not fit CLIP ViT: it {problem} "
                                        f"({len(absent)} missing, {len(unexpected)} unexpected)")
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:  # a shape mismatch; torch's message lists them over several lines
            detail = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), "")
            raise dnnlib.util.UserError(f"{source} does not fit CLIP ViT: {detail}") from None
        return model

    def encode_image(self, images):
        """[n, 3, image_size, image_size] images, preprocessed as CLIP's (see preprocess_generator_images)
        -> [n, embed_dim] embeddings (not normalised)."""
        size = self.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"encode_image expects [n, 3, {size}, {size}] images, got {list(images.shape)}")
        return self.visual(images.to(self.visual.conv1.weight.dtype))

    def encode_generator_images(self, images):
        """Generator output: [n, 3 or 1, h, w] in [-1, 1], any size -> [n, embed_dim] embeddings; differentiable."""
        return self.encode_image(preprocess_generator_images(images, self.image_size))

    def text_hidden_states(self, tokens):
        """[n, context_length] token ids -> [n, context_length, text width]: every position's output after
        ln_final. Position i depends only on tokens 0..i (causal attention)."""
        if tokens.ndim != 2 or tokens.shape[1] != self.context_length or tokens.is_floating_point():
            raise ValueError(f"expected [n, {self.context_length}] integer token ids, got {tokens.dtype} "
                             f"{list(tokens.shape)}")
        x = self.token_embedding(tokens) + self.positional_embedding
        return self.ln_final(self.transformer(x, causal=True))

    def encode_text(self, tokens):
        """[n, context_length] token ids (from `tokenize`) -> [n, embed_dim] embeddings (not normalised): the
        hidden state at the end token, which is the largest id in each row (EOT = 49407 in CLIP's vocabulary), so
        padding after it has no effect."""
        hidden = self.text_hidden_states(tokens)
        eot = hidden[torch.arange(tokens.shape[0], device=tokens.device), tokens.argmax(dim=-1)]
        return eot @ self.text_projection

    def forward(self, images, tokens):
        """CLIP's logits: (per image [n_images, n_texts], per text [n_texts, n_images]), scaled cosines."""
        image_features = F.normalize(self.encode_image(images), dim=-1)
        text_features = F.normalize(self.encode_text(tokens), dim=-1)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


def preprocess_generator_images(images, size=224):
    """Generator images [n, c, h, w] in [-1, 1] (c = 3, or 1 for grayscale) -> CLIP's input [n, 3, size, size].

    The same steps as CLIP's own preprocessing, differentiably: shorter side resized to `size` (bicubic with
    antialiasing, i.e. PIL's filter, which CLIP's training images went through), centre crop, [0, 1] scaling,
    normalisation with CLIP's mean and std. (StyleCLIP instead upsamples 1024x1024 images 7x, nearest, and
    average-pools by 32: a box filter; we keep the filter CLIP's embeddings were trained with, which also works for
    any size.) Values are not clipped to [-1, 1], so that pixels outside the range still get gradients."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected [n, 3 or 1, h, w] images, got {list(images.shape)}")
    h, w = images.shape[2:]
    # torchvision's Resize(int): the longer side is truncated, not rounded.
    new_h, new_w = (size, size * w // h) if h <= w else (size * h // w, size)
    x = (images.expand(-1, 3, -1, -1) + 1) / 2
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
    top, left = round((new_h - size) / 2), round((new_w - size) / 2)
    x = x[:, :, top:top + size, left:left + size]
    mean = torch.tensor(IMAGE_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def cosine_distance(image_features, text_features):
    """1 - cosine similarity along the last dimension (broadcasting, e.g. [n, e] against [1, e] -> [n]): StyleCLIP's
    CLIP loss, which it writes as 1 - logits / 100 with CLIP's logit scale of 100."""
    return 1 - F.cosine_similarity(image_features, text_features, dim=-1)

# ----------------------------------------------------------------------------
# Tokenizer.


def _byte_characters():
    """Byte value -> the printable character standing for it in BPE tokens, in vocabulary order: printable
    Latin-1 bytes stand for themselves, the other 68 (controls, space, ...) take the characters from U+0100 on."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {byte: chr(byte) for byte in printable}
    for byte in range(256):
        if byte not in chars:
            chars[byte] = chr(256 + len(chars) - len(printable))
    return chars


_BYTE_CHARS = _byte_characters()
# Words are the special tokens, common English contractions, runs of letters, single digits, runs of other symbols.
_WORD_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


class Tokenizer:
    """CLIP's byte-level BPE tokenizer over a list of merges (pairs of symbols, best first).

    The vocabulary is the 256 byte characters, the same with the end-of-word mark '</w>', one token per merge, then
    SOT and EOT, so a merges list determines every id."""

    def __init__(self, merges):
        try:
            import regex  # the \p{L} and \p{N} classes of the word pattern need it; `re` has no Unicode classes
        except ImportError:
            raise dnnlib.util.UserError("CLIP's tokenizer needs the regex package: pip install regex") from None
        self._words = regex.compile(_WORD_PATTERN, regex.IGNORECASE)
        self._whitespace = regex.compile(r"\s+")
        chars = list(_BYTE_CHARS.values())
        vocab = chars + [c + "</w>" for c in chars] + [first + second for first, second in merges] + [SOT, EOT]
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.vocab_size = len(vocab)
        self.ranks = {tuple(merge): rank for rank, merge in enumerate(merges)}
        self.sot, self.eot = self.encoder[SOT], self.encoder[EOT]
        self._cache = {}

    def bpe(self, word):
        """A word (byte characters) -> its BPE symbols: merge the best-ranked adjacent pair everywhere, repeat."""
        if word in self._cache:
            return self._cache[word]
        symbols = [*word[:-1], word[-1] + "</w>"]
        while len(symbols) > 1:
            pair = min(zip(symbols, symbols[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        self._cache[word] = symbols
        return symbols

    def encode(self, text):
        """Text -> token ids without SOT/EOT, after CLIP's cleanup (ftfy if installed, HTML entities, whitespace,
        lower case)."""
        if ftfy is not None:
            text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        text = self._whitespace.sub(" ", text).strip().lower()
        ids = []
        for word in self._words.findall(text):
            if word in (SOT, EOT):
                ids.append(self.encoder[word])
                continue
            chars = "".join(_BYTE_CHARS[byte] for byte in word.encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self.bpe(chars))
        return ids

    def __call__(self, texts, context_length=CONTEXT_LENGTH, truncate=False):
        """A string or a list of them -> LongTensor [n, context_length]: SOT, tokens, EOT, zero padding.

        A text too long for the context raises UserError, or with truncate=True is cut, keeping EOT last."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        result = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > context_length:
                if not truncate:
                    shown = text if len(text) <= 40 else text[:37] + "..."
                    raise dnnlib.util.UserError(f"the text {shown!r} is {len(ids)} tokens long with start and end, "
                                                f"more than CLIP's context of {context_length}; shorten it")
                ids = ids[:context_length - 1] + [self.eot]
            result[row, :len(ids)] = torch.tensor(ids)
        return result


def installed_bpe_path():
    """The merges file shipped by an installed open_clip_torch (or OpenAI's `clip`) package, or None. The packages
    are located, not imported: importing open_clip needs torchvision."""
    for package in ("open_clip", "clip"):
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            path = os.path.join(folder, BPE_FILE_NAME)
            if os.path.isfile(path):
                return path
    return None


def load_bpe_merges(path_or_url=None, cache_dir=None):
    """CLIP's BPE merges as a list of pairs, from a path or URL (gzipped or plain text); by default from an
    installed package, else downloaded once from OpenAI's repository. Missing or offline -> UserError."""
    source = path_or_url or installed_bpe_path() or BPE_URL
    try:
        path = dnnlib.util.open_url(source, cache_dir=cache_dir, return_filename=True, verbose=False)
    except dnnlib.util.UserError as err:
        raise dnnlib.util.UserError(f"CLIP's BPE vocabulary is not available ({err}); install it with "
                                    f"'pip install --no-deps open_clip_torch', or pass the path of {BPE_FILE_NAME}") \
            from None
    with open(path, "rb") as file:
        data = file.read()
    if source == BPE_URL and hashlib.sha256(data).hexdigest() != BPE_SHA256:
        raise dnnlib.util.UserError(f"{path} is corrupt (its SHA256 does not match {BPE_URL}); delete it to "
                                    "download it again")
    try:
        text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:  # gzip.BadGzipFile is an OSError
        raise dnnlib.util.UserError(f"{source} is not a BPE merges file ({type(err).__name__}: {err})") from None
    lines = text.split("\n")
    merges = [tuple(line.split()) for line in lines[1:1 + NUM_MERGES] if line]
    if "#version" not in lines[0] or any(len(merge) != 2 for merge in merges):
        raise dnnlib.util.UserError(f"{source} is not a BPE merges file: expected a '#version' line, then one "
                                    "pair of symbols per line")
    return merges


@lru_cache(maxsize=None)
def get_tokenizer(bpe_path=None):
    """The tokenizer for the merges file `bpe_path` (default: see load_bpe_merges), built once per path."""
    return Tokenizer(load_bpe_merges(bpe_path))


def tokenize(texts, context_length=CONTEXT_LENGTH, truncate=False, bpe_path=None):
    """Text prompt(s) -> LongTensor [n, context_length] for CLIP.encode_text, as OpenAI's clip.tokenize."""
    return get_tokenizer(bpe_path)(texts, context_length=context_length, truncate=truncate)

# ----------------------------------------------------------------------------
# Checkpoint files.


# TorchScript archives are read as data by dnnlib/torch_archive.py; these names stay importable from here.
UnsafeArchiveError = torch_archive.UnsafeArchiveError
read_torchscript_tensors = torch_archive.read_torchscript_tensors
_is_torchscript_archive = torch_archive.is_torchscript_archive


def read_clip_state_dict(path):
    """The tensors of a CLIP checkpoint file by OpenAI's names: a TorchScript archive (OpenAI's release), a
    `.safetensors` file, or a torch.save file (open_clip's `.bin`, also training checkpoints with a 'state_dict'
    entry and DistributedDataParallel's 'module.' prefixes), loaded with weights_only=True."""
    source = os.path.basename(path)
    if _is_torchscript_archive(path):
        tensors = read_torchscript_tensors(path)
    elif path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise dnnlib.util.UserError(f"reading {source} needs the safetensors package: pip install safetensors") \
                from None
        try:
            tensors = load_file(path)
        except Exception as err:  # safetensors raises its own SafetensorError for damaged files
            raise dnnlib.util.UserError(f"{source} is not a valid safetensors file ({err})") from None
    else:
        try:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as err:
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise dnnlib.util.UserError(f"{source} is not a readable CLIP checkpoint ({first_line})") from None
        if isinstance(tensors, dict) and isinstance(tensors.get("state_dict"), dict):
            tensors = tensors["state_dict"]
        if not isinstance(tensors, dict):
            raise dnnlib.util.UserError(f"{source} holds a {type(tensors).__name__}, not a state dict")
        if tensors and all(key.startswith("module.") for key in tensors):
            tensors = {key[len("module."):]: value for key, value in tensors.items()}
    # OpenAI's archives also store the model's settings as buffers, which the shapes already tell, and TorchScript
    # archives of open_clip models keep the causal mask buffer, which the text transformer makes itself.
    return {key: value for key, value in tensors.items()
            if key not in ("input_resolution", "context_length", "vocab_size") and key.split(".")[-1] != "attn_mask"}


def _default_quick_gelu(path):
    """Whether a checkpoint needs QuickGELU: OpenAI's models do; open_clip's say so in the open_clip_config.json
    that the Hugging Face hub keeps beside them (absent means nn.GELU). Without a config, assume OpenAI's."""
    if _is_torchscript_archive(path):
        return True
    config_path = os.path.join(os.path.dirname(path), "open_clip_config.json")
    if not os.path.isfile(config_path):
        return True
    try:
        with open(config_path, encoding="utf-8") as file:
            return bool(json.load(file).get("model_cfg", {}).get("quick_gelu", False))
    except (OSError, ValueError, AttributeError) as err:
        raise dnnlib.util.UserError(f"cannot read {config_path}: {err}; fix it, or remove it and pass quick_gelu") \
            from None


def load_clip(path_or_url=None, device=None, quick_gelu=None, cache_dir=None, verbose=True):
    """Load CLIP ViT weights -> CLIP in eval mode with frozen weights (gradients still flow to the inputs).

    path_or_url: a local file or URL (downloaded once into the dnnlib cache, or cache_dir); default OpenAI's
    ViT-B/32 release, whose SHA256 is checked as OpenAI's loader does. quick_gelu: None takes QuickGELU, except for
    open_clip weights with an open_clip_config.json beside them, which says. device: default CUDA when available.
    Missing, offline or invalid -> UserError."""
    source = OPENAI_VIT_B_32_URL if path_or_url is None else os.fspath(path_or_url)
    try:
        path = dnnlib.util.open_url(source, cache_dir=cache_dir, return_filename=True, verbose=verbose)
    except dnnlib.util.UserError as err:
        raise dnnlib.util.UserError(f"CLIP weights are not available ({err}); {_WEIGHTS_HELP}") from None
    if source == OPENAI_VIT_B_32_URL:
        if dnnlib.util.file_sha256(path) != source.split("/")[-2]:  # OpenAI's URLs name the file's SHA256
            raise dnnlib.util.UserError(f"{path} is corrupt (its SHA256 does not match {source}); delete it to "
                                        f"download it again, or {_WEIGHTS_HELP}")
    if quick_gelu is None:
        quick_gelu = _default_quick_gelu(path)
    model = CLIP.from_state_dict(read_clip_state_dict(path), quick_gelu=quick_gelu, source=os.path.basename(path))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.to(device).eval().requires_grad_(False)
