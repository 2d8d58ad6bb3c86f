"""What the called phones say when they answer, for answering-machine detection over real SIP: WAV files a baresip
phone plays (its ``audio_file``), rendered once per directory with the CTI's own Open JTalk prompt code
(``sip.prompts``). baresip ends the call when its file ends, so each file lasts longer than any test's call.

- a **machine**: a 留守番電話 greeting of ~9 s (``LONGGREETING`` after 1.5 s of voice), then silence;
- a **person**: 「はい、もしもし。」, then three seconds of silence (they wait for an answer: ``HUMAN`` after one
  second of it), then a steady tone — the person talking once an agent is there, which the agent's phone can
  measure (``PERSON_TALK_HZ``).

``test_plane_amd`` checks that the detector classifies each as meant, also with the start of the audio lost (the
subscription to the callee's audio is made after their answer).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from kakehashi.telephony.drivers.sip.prompts import RATE, PromptCache, write_wav

MACHINE_GREETING = (
    "お電話ありがとうございます。ただいま電話に出ることができません。発信音のあとに、お名前とご用件をお話しください。"
)
PERSON_GREETING = "はい、もしもし。"
PERSON_WAIT_S = 3.0
PERSON_TALK_HZ = 440.0
CALL_S = 90.0  # every file lasts this long: baresip hangs up when its file ends


def _speech(directory: Path, text: str) -> np.ndarray:
    wav = PromptCache(directory / "tts").wav_for(text)
    with wave.open(str(wav)) as audio:
        return np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2").astype(np.float64)


def machine_wav(directory: Path) -> Path:
    """An answering machine: the greeting, then silence."""
    path = directory / "machine.wav"
    if not path.exists():
        greeting = _speech(directory, MACHINE_GREETING)
        write_wav(path, np.concatenate([greeting, np.zeros(int(CALL_S * RATE) - len(greeting))]))
    return path


def person_samples(directory: Path) -> np.ndarray:
    """A person: 「はい、もしもし。」, silence while they wait, then talking (a tone at half scale)."""
    greeting = _speech(directory, PERSON_GREETING)
    talk_s = CALL_S - len(greeting) / RATE - PERSON_WAIT_S
    talk = 0.5 * 32767 * np.sin(2 * np.pi * PERSON_TALK_HZ * np.arange(int(talk_s * RATE)) / RATE)
    return np.concatenate([greeting, np.zeros(int(PERSON_WAIT_S * RATE)), talk])


def person_wav(directory: Path) -> Path:
    path = directory / "person.wav"
    if not path.exists():
        write_wav(path, person_samples(directory))
    return path
