#!/usr/bin/env python3
"""Write a CLAP checkpoint directory with the real architecture and random weights.

The real weights (laion/clap-htsat-fused, ~600 MB) cannot be downloaded on the machines this
project is built on, so tests and benchmarks use a checkpoint made here. It is loadable by the
same code path as the real one:

    ClapModel.from_pretrained(OUT)      config.json + model.safetensors
    ClapProcessor.from_pretrained(OUT)  preprocessor_config.json (the laion one, verbatim)
    AutoTokenizer.from_pretrained(OUT)  a RoBERTa-style byte-level BPE trained offline here

Full size has the shapes of a real checkpoint family (`--family`):

    fused     laion/clap-htsat-fused: HTSAT-tiny audio tower with the fusion branch,
              RoBERTa-base text tower, 512-d projections (the default)
    unfused   laion/clap-htsat-unfused: the same without the fusion branch (`rand_trunc`,
              Slaney mel filters in the feature extractor); `--unfused` is short for it
    larger    laion/larger_clap_general, _music, _music_and_speech: HTSAT-base audio tower
              (first-stage width 128, depths 2-2-12-2, 1024-d output), unfused, as
              transformers' CLAP conversion script configures them

`--tiny` keeps each family's structure with very small widths so that tests run a batch in
milliseconds (the larger tiny variant keeps its deeper third stage).

The similarities of a random model mean nothing; its speed and its plumbing are real.

    python scripts/make_random_clap.py OUT [--tiny] [--family fused|unfused|larger] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

# The preprocessor_config.json of laion/clap-htsat-fused (revision 365dea6e), field for field.
# Note frequency_min 50 (the ClapFeatureExtractor class default is 0).
LAION_PREPROCESSOR_CONFIG = {
    "chunk_length_s": 10,
    "feature_extractor_type": "ClapFeatureExtractor",
    "feature_size": 64,
    "fft_window_size": 1024,
    "frequency_max": 14000,
    "frequency_min": 50,
    "hop_length": 480,
    "max_length_s": 10,
    "n_fft": 1024,
    "nb_frequency_bins": 513,
    "nb_max_frames": 1000,
    "nb_max_samples": 480000,
    "padding": "repeatpad",
    "padding_side": "right",
    "padding_value": 0.0,
    "processor_class": "ClapProcessor",
    "return_attention_mask": False,
    "sampling_rate": 48000,
    "top_db": None,
    "truncation": "fusion",
}

# laion/clap-htsat-fused config.json: HTSAT-tiny audio tower and RoBERTa-base text tower.
FULL_AUDIO = dict(
    window_size=8, num_mel_bins=64, spec_size=256, hidden_act="gelu", patch_size=4,
    patch_stride=[4, 4], num_classes=527, hidden_size=768, depths=[2, 2, 6, 2],
    num_attention_heads=[4, 8, 16, 32], hidden_dropout_prob=0.1, fusion_type=None,
    patch_embed_input_channels=1, flatten_patch_embeds=True, patch_embeds_hidden_size=96,
    enable_patch_layer_norm=True, drop_path_rate=0.0, attention_probs_dropout_prob=0.0,
    qkv_bias=True, mlp_ratio=4.0, aff_block_r=4, num_hidden_layers=4, layer_norm_eps=1e-5,
)
FULL_TEXT = dict(
    vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1, max_position_embeddings=514, type_vocab_size=1,
    layer_norm_eps=1e-12, pad_token_id=1, bos_token_id=0, eos_token_id=2,
)
FULL_PROJECTION_DIM = 512

# Same structure, tiny widths. spec_size, window and patch sizes stay: they fix the input
# geometry (1001 x 64 mel -> 256 x 256 image), which is what the plumbing must get right.
TINY_AUDIO = dict(FULL_AUDIO, hidden_size=64, depths=[1, 1, 2, 1], num_attention_heads=[1, 2, 2, 4],
                  patch_embeds_hidden_size=8, mlp_ratio=2.0)
TINY_TEXT = dict(FULL_TEXT, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64)
TINY_PROJECTION_DIM = 32

# HTSAT-base, the audio tower of laion/larger_clap_*: LAION CLAP's embed_dim 128 and depths
# 2-2-12-2, which transformers' conversion script maps to patch_embeds_hidden_size, depths and
# hidden_size (the audio projection's input, 128 * 8). Unfused.
FULL_BASE_AUDIO = dict(FULL_AUDIO, patch_embeds_hidden_size=128, hidden_size=1024, depths=[2, 2, 12, 2])
TINY_BASE_AUDIO = dict(TINY_AUDIO, depths=[1, 1, 4, 1])
FAMILIES = ("fused", "unfused", "larger")

# --- an English corpus of sound descriptions for the tokenizer --------------------------------

_SOURCES = """dog cat bird crow seagull owl horse cow sheep pig rooster frog cricket bee fly wolf lion
car truck bus motorcycle train tram airplane helicopter jet boat ship engine siren horn alarm bell
door window drawer footsteps shoes heels boots gravel snow leaves grass wood metal glass plastic
paper cloth rope chain sword knife gun rifle pistol shotgun explosion fire thunder rain wind storm
wave water river stream waterfall drip bubble splash ocean kettle cup plate spoon fork pan oven
fridge microwave blender keyboard mouse typewriter phone clock watch computer printer fan drill
saw hammer wrench crowd applause laughter child baby man woman voice whisper scream cough sneeze
breath heartbeat robot laser spaceship monster creature zombie ghost magic spell whoosh swoosh
impact hit punch kick slap crash smash break scrape scratch rub creak squeak click clack beep
buzz hum drone rumble roar growl hiss whistle chime gong drum cymbal guitar piano violin synth
tone sweep noise burst static crackle""".split()
_ADJ = """loud soft quiet distant close heavy light sharp dull metallic wooden hollow deep high low
short long fast slow rhythmic steady intermittent muffled reverberant dry wet bright dark harsh
gentle rough smooth thin thick large small old new broken rusty squeaky creaky electric mechanical
digital analog eerie calm tense aggressive playful tiny huge""".split()
_ACTIONS = """scraping banging rattling rolling falling sliding opening closing slamming dragging
knocking tapping ringing buzzing humming whistling roaring crackling dripping splashing pouring
flowing blowing rustling crunching stomping running walking passing approaching departing idling
revving starting stopping shattering exploding firing reloading chirping barking meowing howling
singing talking shouting laughing crying breathing""".split()
_PLACES = """in a stone room|in a small room|in a large hall|in a cathedral|in a cave|in a tunnel
|in a forest|in a city street|on a busy road|in a parking garage|in the rain|at night|at dawn
|in an office|in a kitchen|in a bathroom|in a car|on a train|underwater|in the distance
|close up|outdoors|indoors|on concrete|on wood|on metal|on gravel|in snow|in a field""".split("|")


def sound_descriptions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(_ADJ), rng.choice(_SOURCES), rng.choice(_ACTIONS), rng.choice(_PLACES).strip()]
        form = rng.randrange(5)
        if form == 0:
            text = f"{parts[1]} {parts[2]} {parts[3]}"
        elif form == 1:
            text = f"the sound of a {parts[0]} {parts[1]} {parts[2]}"
        elif form == 2:
            text = f"{parts[0].capitalize()} {parts[1]} {parts[2]} {parts[3]}, recorded with a {rng.choice(_ADJ)} microphone."
        elif form == 3:
            text = f"A {parts[1]} and a {rng.choice(_SOURCES)} {parts[2]} {parts[3]}"
        else:
            text = f"{parts[2]} {parts[1]}s, {parts[0]}, {rng.randint(1, 120)} seconds"
        out.append(text)
    return out


def build_tokenizer(seed: int):
    """A RoBERTa-style byte-level BPE tokenizer trained on generated sound descriptions."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4 as in roberta-base
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sound_descriptions(4000, seed), vocab_size=2000, min_frequency=2,
                            special_tokens=specials, show_progress=False)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return RobertaTokenizerFast(vocab=model["vocab"], merges=merges, model_max_length=512)


# --- weights -----------------------------------------------------------------------------------

def _randomise(model, seed: int) -> None:
    """Give the random model input-sensitive outputs.

    transformers' init is meant for training from scratch: tiny weights and identity batch-norm
    statistics, under which log-mel inputs in dB (-100..+20) swamp everything and every clip
    maps to nearly the same vector, which would make agreement tests vacuous. We rescale the
    linear/conv weights to fan-in variance and give the input batch-norm the statistics of
    log-mel frames, so different audio (and text) gives clearly different embeddings.
    """
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) / math.sqrt(fan_in))
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.02)
            elif isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(-45.0 + 5.0 * torch.randn(n, generator=g))
                module.running_var.copy_((20.0 + 2.0 * torch.randn(n, generator=g)) ** 2)
        for name, p in model.named_parameters():
            if "relative_position_bias_table" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        # The text embedding is the pooled first token (<s>, always at position 2). Left as is,
        # its own embedding dominates and every text maps to the same vector; zeroed, the first
        # token is built by attention from the others, as in a trained model.
        emb = model.text_model.embeddings
        emb.word_embeddings.weight[0] = 0
        emb.position_embeddings.weight[2] = 0
        emb.token_type_embeddings.weight.zero_()


def make_random_clap(out: str | Path, *, tiny: bool = False, fused: bool = True, seed: int = 0,
                     family: str | None = None) -> Path:
    """Write the checkpoint directory `out` and return its path (`family` overrides `fused`)."""
    family = family or ("fused" if fused else "unfused")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use one of {FAMILIES}")
    fused = family == "fused"
    import torch
    from transformers import ClapAudioConfig, ClapConfig, ClapModel, ClapTextConfig
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer(seed)
    if family == "larger":
        audio_kw = dict(TINY_BASE_AUDIO if tiny else FULL_BASE_AUDIO, enable_fusion=False)
    else:
        audio_kw = dict(TINY_AUDIO if tiny else FULL_AUDIO, enable_fusion=fused)
    text_kw = dict(TINY_TEXT if tiny else FULL_TEXT)
    if tiny:
        text_kw["vocab_size"] = len(tokenizer)
    proj = TINY_PROJECTION_DIM if tiny else FULL_PROJECTION_DIM
    config = ClapConfig(
        text_config=ClapTextConfig(**text_kw).to_dict(),
        audio_config=ClapAudioConfig(**audio_kw).to_dict(),
        projection_dim=proj,
        logit_scale_init_value=1 / 0.07,
    )
    config.architectures = ["ClapModel"]

    torch.manual_seed(seed)
    # transformers' init (seeded, so deterministic) then our rescaling on top of it.
    model = ClapModel(config).eval()
    _randomise(model, seed)
    model.save_pretrained(out, safe_serialization=True)

    tokenizer.save_pretrained(out)
    pre = dict(LAION_PREPROCESSOR_CONFIG, truncation="fusion" if fused else "rand_trunc")
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2, sort_keys=True) + "\n")
    (out / "README.md").write_text(
        "Random-weight CLAP checkpoint written by scripts/make_random_clap.py "
        f"({'tiny' if tiny else 'full size'}, family {family}, seed {seed}).\n"
        "Its similarities mean nothing; it exists to exercise loading, plumbing and speed.\n"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output directory")
    p.add_argument("--tiny", action="store_true", help="very small widths, for tests")
    p.add_argument("--family", choices=FAMILIES, default=None, help="checkpoint family [default: fused]")
    p.add_argument("--unfused", action="store_true", help="short for --family unfused")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    family = args.family or ("unfused" if args.unfused else "fused")
    out = make_random_clap(args.out, tiny=args.tiny, family=family, seed=args.seed)
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
