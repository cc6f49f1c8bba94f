import numpy as np

from gateway.audio.g711 import (
    ALAW_SILENCE,
    ULAW_SILENCE,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)


def test_ulaw_decode_known_values():
    # ITU-T G.711 mu-law: 0xFF and 0x7F are zero, 0x80 and 0x00 the extremes.
    pcm = np.frombuffer(ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00])), dtype=np.int16)
    assert pcm.tolist() == [0, 0, 32124, -32124]


def test_ulaw_roundtrip_every_code_is_stable():
    codes = bytes(range(256))
    again = ulaw_encode(ulaw_decode(codes))
    # 0x7F (negative zero) encodes back as 0xFF (positive zero); every other code is exact.
    assert [a for a, b in zip(codes, again, strict=True) if a != b] == [0x7F]


def test_ulaw_silence_decodes_to_zero():
    assert ulaw_decode(bytes([ULAW_SILENCE]) * 4) == b"\x00" * 8


def test_alaw_roundtrip_and_silence():
    codes = bytes(range(256))
    assert alaw_encode(alaw_decode(codes)) == codes
    assert np.abs(np.frombuffer(alaw_decode(bytes([ALAW_SILENCE])), dtype=np.int16)).max() <= 8


def test_ulaw_encode_error_is_small_relative_to_signal():
    rng = np.random.default_rng(1)
    pcm = rng.integers(-30000, 30000, 8000, dtype=np.int16)
    back = np.frombuffer(ulaw_decode(ulaw_encode(pcm.tobytes())), dtype=np.int16)
    error = np.abs(back.astype(np.int32) - pcm)
    # mu-law keeps about 13 bits: error within 1/32 of the magnitude plus the smallest step
    assert np.all(error <= np.abs(pcm.astype(np.int32)) / 32 + 8)
