"""Exclusion lists: the files and folders a malware leaves alone are no evidence of what they are named after,
and the list itself is Selective Exclusion (T1679)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import extractors.exclusion_lists
from breachminer.records import Sentence
from extractors.exclusion_lists import is_exclusion_list
from extractors.taggers import LexiconTagger, NameTagger
from extractors.taggers.lexicon import CODE_REVISION as LEXICON_REVISION
from extractors.taggers.names import CODE_REVISION as NAME_REVISION

# as ransomware reports print them (Hive's, BlackCat's), and sentences that merely name a few of the same things
SKIPPED_FILES = ("Ignored files adv scr ani shs bat spl bin sys cab theme cmd themepack com url cpl wpx cur "
                 "C:\\Windows deskthemepack diagcab autorun.inf boot.ini bootfont.bin ntldr thumbs.db Msbuild")
EXCLUDED_FOLDERS = ("The folders excluded are as follows: system volume information, intel, $windows.~ws, "
                    "application data, $recycle.bin, mozilla.")


@pytest.mark.parametrize(("text", "listed"), [
    (SKIPPED_FILES, True),
    (EXCLUDED_FOLDERS, True),
    ("winmd ntldr ntuser.dat.log bootsect.bak autorun.inf thumbs.db iconcache.db", True),  # a long list, no cue
    ("The encryptor skips desktop.ini, thumbs.db and ntuser.dat so the profile still loads.", True),
    # observations: a wiper overwriting boot files, a stealer reading browsers, a worm's autorun.inf
    ("The wiper overwrites ntldr, boot.ini and bootmgr before forcing a reboot.", False),
    ("It steals data from Mozilla Firefox, Google Chrome and Microsoft Edge.", False),
    ("The worm writes autorun.inf to every removable drive it finds.", False),
    ("Also interesting are the strings related to Windows artifacts (e.g. autorun.inf, ntuser.dat.log, etc.).",
     False),
])
def test_an_exclusion_list_is_told_from_an_observation(text: str, listed: bool) -> None:
    assert is_exclusion_list(text) is listed


def test_the_taggers_read_an_exclusion_list_as_selective_exclusion_only(catalog) -> None:
    observed = "The worm writes autorun.inf to every removable drive it finds, then runs MSBuild."
    sentences = [Sentence(0, 0, len(SKIPPED_FILES), SKIPPED_FILES), Sentence(1, 0, len(observed), observed)]
    lexicon = [(m.sentence_index, m.technique_id, m.detail) for m in LexiconTagger(catalog).tag(sentences)]
    assert (0, "T1679", "selective-exclusion-list:high") in lexicon
    assert {t for i, t, _ in lexicon if i == 0} == {"T1679"}  # autorun.inf and Msbuild in the list: nothing
    assert {t for i, t, _ in lexicon if i == 1} >= {"T1091", "T1127.001"}  # the same words observed: evidence
    names = {(m.sentence_index, m.technique_id) for m in NameTagger(catalog).tag(sentences)}
    assert (1, "T1127.001") in names and not any(i == 0 for i, _ in names)


# The taggers' versions name what made a warehouse's mentions, and retag replaces those of another version;
# so a change to the exclusion rule must come with new CODE_REVISIONs of both (then update this digest).
EXCLUSION_RULE = ("lexicon-3", "name-3", "098f656c870a")


def test_the_tagger_versions_change_with_the_exclusion_rule() -> None:
    digest = hashlib.sha256(Path(extractors.exclusion_lists.__file__).read_bytes()).hexdigest()[:12]
    assert (LEXICON_REVISION, NAME_REVISION, digest) == EXCLUSION_RULE, (
        "extractors/exclusion_lists.py changed: bump CODE_REVISION in extractors/taggers/lexicon.py and names.py")
