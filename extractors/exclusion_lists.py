"""Which sentences are a malware's exclusion list: the files, folders and extensions it leaves alone.

Ransomware reports print the lists their sample skips so that Windows still boots ("Ignored files … bat
cab cmd … autorun.inf boot.ini … ntldr thumbs.db", "The folders excluded are as follows: system volume
information, intel, $windows.~ws, …"). Such a list names things the malware does *not* touch:
`autorun.inf` there is no removable-media spread (T1091) and a `MSBuild` folder is no trusted-developer-
utility proxy execution (T1127.001). The list itself shows Selective Exclusion (T1679).

A sentence is an exclusion list when it names at least ``LONG_LIST`` of the system files, folders and
extensions such lists are made of, or at least ``SHORT_LIST`` of them with a word that says they are
left alone ("excluded", "skips", "ignored", "whitelist", "not encrypted", "except"). A wiper that
overwrites `ntldr`, `boot.ini` and `bootmgr` names three of them without such a word, so it stays an
observation. The name and lexicon taggers make no mention in an exclusion list; the lexicon tagger makes
one T1679 mention for it instead. The test is on the sentence alone, so the same text always gets the
same answer.
"""

from __future__ import annotations

import re

# what exclusion lists are made of, and few other sentences name three of
LISTED_NAMES = (
    # files Windows needs to boot and the user's profile to load
    "autorun.inf", "boot.ini", "bootfont.bin", "bootsect.bak", "bootmgr", "desktop.ini", "iconcache.db", "ntldr",
    "ntuser.dat", "ntuser.ini", "thumbs.db", "pagefile.sys", "hiberfil.sys", "swapfile.sys",
    # folders
    "$recycle.bin", "system volume information", "windows.old", "$windows.~bt", "$windows.~ws", "perflogs",
    "msocache", "tor browser", "application data", "all users", "programdata", "boot", "intel", "mozilla",
    "google",
    # extensions only these lists spell out
    "themepack", "deskthemepack", "diagcab", "diagcfg", "diagpkg", "msstyles", "nomedia", "icns",
)
LONG_LIST = 5
SHORT_LIST = 3
SELECTIVE_EXCLUSION = "T1679"
KEY = "selective-exclusion-list"

_LISTED = re.compile(r"(?<![\w.$~])(?:" + "|".join(re.escape(name) for name in sorted(LISTED_NAMES, key=len,
                                                                                       reverse=True))
                     + r")(?!\w)", re.IGNORECASE)
_LEFT_ALONE = re.compile(r"\b(?:ignor\w*|skip\w*|exclu\w*|avoid\w*|whitelist\w*|allowlist\w*|except|spares?|"
                         r"not\s+(?:be\s+)?encrypt\w*)\b", re.IGNORECASE)


def listed_names(text: str) -> list[re.Match[str]]:
    """The exclusion-list names in ``text``, first occurrence of each, in order."""
    seen: dict[str, re.Match[str]] = {}
    for match in _LISTED.finditer(text):
        seen.setdefault(match.group().lower(), match)
    return list(seen.values())


def is_exclusion_list(text: str) -> bool:
    """Whether a sentence lists what a malware leaves alone (see the module docstring)."""
    named = len(listed_names(text))
    return named >= LONG_LIST or (named >= SHORT_LIST and _LEFT_ALONE.search(text) is not None)
