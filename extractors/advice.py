"""Which sentences are defender advice, not observation (DESIGN.md §4: a sighting is what a report supports).

Advisories end with mitigations ("Audit user accounts with administrative privileges…", "Organizations
should restrict RDP…"); those sentences name techniques the adversary did not necessarily use, and
counting them biases the frequency tables towards whatever defenders are told to harden. A sentence
is advice when

- it is an imperative that starts with a verb only defenders use ("Implement", "Ensure", "Audit",
  "Enforce", "Prioritize", …), or
- it starts with a verb that malware capability lists use too ("Disable", "Scan", "Use", "Block", …)
  *and* addresses the reader ("your", "unused", "least privilege", "where possible", …), so
  "Disable the Windows firewall, using netsh.exe" (a bot command) stays an observation, or
- its main clause recommends in so many words ("organizations should", "we recommend", "CISA
  encourages", "it is recommended") as its own clause: first, after a clause ending in ";", ":" or a
  dash, or after an introductory phrase ("Specifically, …", "To help prevent such attacks, we
  suggest…"); or it speaks of "best practice". An observation that ends "…, and defenders should
  expect all three to need cleaning" stays an observation.

Bullets, numbering and table pipes before the first word are ignored. The test is on the sentence
alone, so the same text always gets the same answer (retagging a stored report needs no other
context). ``extractors.sightings`` does not count name, lexicon or classifier evidence from advice
sentences; an explicit technique ID still counts, since advisories cite IDs for what the actor did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from breachminer.records import Sentence

# verbs that open a recommendation and (almost) never a description of what malware does
DEFENDER_VERBS = frozenset({
    "adopt", "audit", "avoid", "consider", "educate", "employ", "enforce", "ensure",
    "harden", "implement", "inventory", "isolate", "mitigate", "prioritize", "prioritise",
    "regularly", "require", "restrict", "review", "rotate", "train", "upgrade", "utilize",
    "validate", "verify",
})
# verbs that open advice and also bot commands, attack steps or technique names ("Disable firewall",
# "Use the SeDebugPrivilege function…", "Establish Accounts")
SHARED_VERBS = frozenset({
    "apply", "back", "backup", "block", "change", "configure", "deny", "deploy", "disable",
    "enable", "establish", "filter", "install", "keep", "limit", "maintain", "monitor", "patch", "prevent",
    "protect", "remove", "reset", "scan", "segment", "set", "turn", "update", "use",
})
_LEAD = re.compile(r"^[\s\-–—•*·|>#\d.)(\[\]]*")
_FIRST_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*(?=[\s,:;.!?]|$)|\S+")  # a word, or a token like a file name
_ADDRESSES_READER = re.compile(
    r"\b(?:you|your|organi[sz]ations?|enterprises?|least[- ]privilege|not needed|unneeded|"
    r"unnecessary|unused|where possible|if possible|whenever possible|where feasible|up[- ]to[- ]date|"
    r"all (?:users|systems|accounts|devices|hosts|endpoints|workstations|servers))\b",
    re.IGNORECASE,
)
_RECOMMENDS = re.compile(  # a recommending main clause
    r"\b(?:organi[sz]ations|administrators|defenders|network defenders|users|you|entities|companies|owners|"
    r"operators|customers|victims)\s+(?:should|must|are (?:strongly )?(?:encouraged|advised|urged))\b"
    r"|\b(?:we|cisa|fbi|nsa|ms-isac|ncsc|acsc|incibe)(?:\s+and\s+\w+)?\s+(?:strongly\s+)?"
    r"(?:recommends?|advises?|encourages?|urges?|suggests?)\b"
    r"|\bit is (?:strongly |highly )?(?:recommended|advised|advisable)\b",
    re.IGNORECASE,
)
_BEST_PRACTICE = re.compile(r"\bbest practices?\b", re.IGNORECASE)
# what may come before a recommending clause: nothing, a heading, a clause ending in ";" ":" or a dash, or
# an introductory phrase ("Specifically, …", "To help prevent such attacks, we suggest…"); in
# "The loader …, and defenders should expect…" the recommendation is appended to an observation
_INTRODUCERS = frozenset({
    "additionally", "after", "although", "as", "because", "before", "for", "given", "if", "in", "once",
    "should", "since", "specifically", "therefore", "to", "upon", "when", "where", "while", "with",
})
_NOT_A_VERB_AFTER = frozenset({"of", "is", "was", "were", "are", "has", "had"})  # "Use of", "Patch is"


def is_advice(text: str) -> bool:
    """Whether a sentence tells defenders what to do rather than reporting what happened."""
    words = _FIRST_WORDS.findall(_LEAD.sub("", text)[:80])
    if words and words[0][0].isupper() and not (len(words) > 1 and words[1].lower() in _NOT_A_VERB_AFTER):
        verb = words[0].lower()
        if verb in DEFENDER_VERBS:
            return True
        if verb in SHARED_VERBS and _ADDRESSES_READER.search(text):
            return True
    if _BEST_PRACTICE.search(text):
        return True
    for match in _RECOMMENDS.finditer(text):
        lead = _LEAD.sub("", text[:match.start()]).strip()
        lead_words = _FIRST_WORDS.findall(lead)
        if (not lead or match.group()[0].isupper()  # first, after a heading run into it, or an agency's
                or lead.endswith((";", ":", "—", "–"))  # its own clause
                or (lead.endswith(",") and (len(lead_words) <= 4 or lead_words[0].lower() in _INTRODUCERS))):
            return True
    return False


def advice_sentences(sentences: Iterable[Sentence]) -> frozenset[int]:
    """Indexes of the sentences that are advice."""
    return frozenset(s.index for s in sentences if is_advice(s.text))
