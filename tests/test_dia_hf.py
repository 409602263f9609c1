"""This package's Dia pieces against transformers' (offline, tiny): the training sequence and labels equal what
``DiaProcessor`` builds from the same codes, and greedy generation through transformers' ``generate`` (KV cache,
CFG) gives the codes of the readable reference loop ``tts_nb_utils.dia.generate``."""

from __future__ import annotations

import torch
from transformers.models.dia.processing_dia import DiaProcessor

from tts_nb_utils.dia import delay
from tts_nb_utils.dia.data import DiaDataset, collate
from tts_nb_utils.dia.generate import generate
from tts_nb_utils.dia.hf import generate_codes, to_transformers
from tts_nb_utils.dia.model import DiaConfig, DiaModel

D = list(delay.DELAY_PATTERN)


def _processor_training_inputs(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``DiaProcessor.__call__(..., generation=False, output_labels=True)`` for one item whose DAC codes are
    ``codes [L, 9]`` (processing_dia.py: EOS row appended, BOS row prepended, PAD-filled, delayed, shifted)."""
    L, C = codes.shape
    x = torch.cat([torch.full((1, C), delay.BOS), codes, torch.full((1, C), delay.EOS)])[None]
    n = L + 2 + max(D)  # decoder_attention_mask length: sequence + BOS + EOS + max delay
    prefill = torch.full((1, n, C), delay.PAD, dtype=torch.long)
    prefill[:, : n - max(D)] = x
    idx = DiaProcessor.build_indices(bsz=1, seq_len=n, num_channels=C, delay_pattern=D, revert=False)
    seq = DiaProcessor.apply_audio_delay(audio=prefill, pad_token_id=delay.PAD, bos_token_id=delay.BOS,
                                         precomputed_idx=idx)
    labels = seq.clone()[:, 1:]
    labels[(labels == delay.PAD) | (labels == delay.BOS)] = -100
    return seq[:, :-1], labels


def test_collated_batches_equal_dia_processors_inputs_and_labels():
    g = torch.Generator().manual_seed(0)
    for frames in (1, 7, 40):
        codes = torch.randint(0, 1024, (frames, 9), generator=g)
        b = collate([DiaDataset([("[S1] hi", codes)])[0]])
        inputs, labels = _processor_training_inputs(codes)
        assert torch.equal(b.audio_in, inputs)
        ours = b.targets.clone()
        ours[(ours == delay.PAD) | (ours == delay.BOS)] = -100  # the loss ignores them (loss.channel_ce_sums)
        assert torch.equal(ours, labels)


def test_dias_index_functions_equal_the_processors():
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 1024, (2, 30, 9), generator=g)
    ours = delay.apply_audio_delay(codes, delay.PAD, delay.BOS, delay.build_delay_indices(2, 30, 9, D))
    idx = DiaProcessor.build_indices(bsz=2, seq_len=30, num_channels=9, delay_pattern=D, revert=False)
    theirs = DiaProcessor.apply_audio_delay(audio=codes, pad_token_id=delay.PAD, bos_token_id=delay.BOS,
                                            precomputed_idx=idx)
    assert torch.equal(ours, theirs)


def test_transformers_generate_gives_the_reference_loops_codes():
    torch.manual_seed(0)
    model = DiaModel(DiaConfig.tiny())
    with torch.no_grad():  # away from init, so that greedy decoding is not one repeated token
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    text = "[S1] The quick brown fox."
    ref = generate(model, text, max_rows=40, cfg_scale=3.0, temperature=0.0)
    got = generate_codes(to_transformers(model), text, max_rows=40, cfg_scale=3.0, temperature=0.0)
    assert len(set(ref[:, 1].tolist())) > 3 and torch.equal(got, ref)


def test_dac_codec_path_runs_transformers_dac_model(monkeypatch):
    """CODEC='dac' through transformers' DacModel: a small randomly initialised one (the real weights download
    once, never in tests) with the 44 kHz model's hop (512) and 9 codebooks."""
    import numpy as np
    from transformers import DacConfig, DacModel

    from tts_nb_utils.dia import codec

    torch.manual_seed(0)
    small = DacModel(DacConfig(encoder_hidden_size=8, decoder_hidden_size=32, sampling_rate=44100)).eval()
    monkeypatch.setitem(codec._DAC, "model", small)
    y = np.sin(np.linspace(0, 300, 22050)).astype(np.float32)  # 0.5 s at 44.1 kHz -> 44 frames of 512 samples
    codes = codec.encode(y, 44100, codec="dac")
    assert codes.shape == (44, 9) and codes.dtype == torch.int64 and 0 <= int(codes.min()) <= int(codes.max()) < 1024
    audio = codec.decode(codes, codec="dac")
    assert audio.shape == (44 * 512,) and np.isfinite(audio).all()
