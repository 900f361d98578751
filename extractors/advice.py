"""Which sentences are defender advice, not observation (DESIGN.md §4: a sighting is what a report supports).

Advisories end with mitigations ("Audit user accounts with administrative privileges…", "Organizations
should restrict RDP…"); those sentences name techniques the adversary did not necessarily use, and
counting them biases the frequency tables towards whatever defenders are told to harden. A sentence
is advice when

- it is an imperative that starts with a verb only defenders use ("Implement", "Ensure", "Audit",
  "Enforce", "Prioritize", …; "Monitor for", "Hunt for", "Strongly consider"), or
- it starts with a verb that bot commands, attack playbooks and technique names use too ("Disable",
  "Scan", "Use", "Establish", …) *and* addresses the reader ("your", "unused", "least privilege",
  "where possible", …), so "Disable the Windows firewall, using netsh.exe" (a bot command) stays an
  observation, or
- a recommendation is its own clause: "Organizations should…", "We recommend…", "Microsoft
  recommends…", "It is recommended…", first, after a heading run into it, after ";", ":" or a dash, or
  after an introductory phrase ("Specifically, …", "To help prevent such attacks, we suggest…"); or it
  follows "best practice(s)". Observations that mention defenders stay observations: "…, and defenders
  should expect all three to need cleaning", "Users must enable macros for the code to run",
  "…, which CISA recommends patching", "Contrary to best practices, the password was reused…".

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
    "adopt", "audit", "avoid", "consider", "educate", "employ", "enforce", "ensure", "harden",
    "implement", "inventory", "isolate", "mitigate", "prioritize", "prioritise", "regularly", "require",
    "restrict", "review", "rotate", "train", "utilize", "validate",
})
# verbs that open advice and also bot commands, attack steps or technique names ("Disable firewall",
# "Use the SeDebugPrivilege function…", "Establish Accounts", "Upgrade the implant")
SHARED_VERBS = frozenset({
    "apply", "back", "backup", "block", "change", "configure", "deny", "deploy", "disable", "enable",
    "establish", "filter", "install", "keep", "limit", "maintain", "monitor", "patch", "prevent",
    "protect", "remove", "reset", "scan", "segment", "set", "turn", "update", "upgrade", "use", "verify",
})
# shared verbs that are advice with "for": "Monitor for unusual use of remote access software"
_WATCH_VERBS = frozenset({"monitor", "hunt", "look", "watch", "scan"})
# skipped before the verb: "Strongly consider disabling…", a heading run in: "Mitigations Implement…"
_BEFORE_THE_VERB = frozenset({"strongly", "also", "additionally", "always", "mitigations", "mitigation",
                              "recommendations", "recommendation"})
_LEAD = re.compile(r"^[\s\-–—•*·|>#\d.)(\[\]]*")
_FIRST_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*(?=[\s,:;.!?]|$)|\S+")  # a word, or a token like a file name
_ADDRESSES_READER = re.compile(
    r"\b(?:you|your|organi[sz]ations?|enterprises?|least[- ]privilege|not needed|unneeded|unnecessary|"
    r"unused|where possible|if possible|whenever possible|where feasible|up[- ]to[- ]date|known malicious|"
    r"known exploited|strong password|default credentials|to prevent the spread)\b",
    re.IGNORECASE,
)
# "Use of…", "Patch is…"; "Audit logs showed…", "Consider the following command line…"
_NOT_A_VERB_AFTER = frozenset({"of", "is", "was", "were", "are", "has", "had"})
_NOUN_PHRASE_VERBS = frozenset({
    "showed", "show", "shows", "revealed", "reveal", "reveals", "indicated", "indicate", "indicates",
    "contained", "contain", "contains", "recorded", "record", "records", "confirmed", "confirm",
})
_CONSIDER_EXAMPLE = re.compile(r"^consider\s+(?:the\s+following|this|these|the\s+example)\b", re.IGNORECASE)
_RECOMMENDING = r"(?:also\s+)?(?:strongly\s+)?(?:recommends?|advises?|encourages?|urges?)\b"
_RECOMMENDS = (  # recommending clauses: who recommends, and how
    re.compile(
        r"\b(?:organi[sz]ations|entities|companies|enterprises|network defenders|defenders)\s+"
        r"(?:should|must|are (?:strongly )?(?:encouraged|advised|urged))\b"
        r"|\b(?:administrators|users|you|owners|operators|customers|victims)\s+"
        r"(?:should|are (?:strongly )?(?:encouraged|advised|urged))\b"  # "users must enable macros" is not
        r"|\b(?:we|(?:the\s+)?(?:authoring|reporting)\s+agencies)\s+(?:also\s+)?(?:strongly\s+)?"
        r"(?:recommend|advise|encourage|urge|suggest)\b"
        r"|\bit is (?:strongly |highly )?(?:recommended|advised|advisable)\b",
        re.IGNORECASE,
    ),
    # an agency or vendor by name: "CISA and FBI recommend", "Microsoft recommends" (not "This encourages",
    # and "suggests" is left out: "Evidence suggests…", "These suggest…" are findings)
    re.compile(r"\b(?!(?:This|These|That|Those|It|They|He|She|Which|Who|What|Such|Evidence|Analysis)\b)"
               r"(?:[A-Z][\w&-]*\s+){1,3}(?:(?:and|&)\s+[A-Z][\w&-]*\s+)?" + _RECOMMENDING),
)
_BEST_PRACTICE = re.compile(
    r"^(?:[\w'-]+\s+){0,4}best practices?\b"  # a heading: "Ransomware Best Practices"
    r"|\b(?:follow|following|adopt|adopting|implement|implementing|adhere to|adherence to)\b[^.;]{0,40}"
    r"\bbest practices?\b"
    r"|\bit(?:'s| is) (?:a |considered )?best practice\b",
    re.IGNORECASE,
)
_AGAINST_PRACTICE = re.compile(r"\b(?:contrary to|against|despite|ignor\w*|violat\w*)\s+(?:\w+\s+)?best practices?",
                               re.IGNORECASE)
# what may come before a recommending clause: nothing, a heading, a clause ending in ";", ":" or a dash, or
# an introductory phrase ("Specifically, …", "To help prevent such attacks, we suggest…"); in
# "The loader …, and defenders should expect…" the recommendation is appended to an observation
# possessive: a capitalised word is one token, never split ("ABCD" as "AB" + "CD"), which made a lead in
# capitals (a heading run into the sentence) backtrack exponentially in its length
_AGENCY_LIST = re.compile(r"(?:(?:[A-Z][\w&-]*+|and|&)[,\s]*+)+")
_INTRODUCERS = frozenset({
    "additionally", "after", "although", "as", "because", "before", "for", "given", "if", "in", "once",
    "should", "since", "specifically", "therefore", "to", "upon", "when", "where", "while", "with",
})


def is_advice(text: str) -> bool:
    """Whether a sentence tells defenders what to do rather than reporting what happened."""
    stripped = _LEAD.sub("", text)
    words = _FIRST_WORDS.findall(stripped[:120])
    capitalised = bool(words) and words[0][0].isupper()
    if words and words[0].lower() in _BEFORE_THE_VERB:
        words = words[1:]
    if words and capitalised and _imperative(words, stripped, text):
        return True
    if _BEST_PRACTICE.search(stripped) and not _AGAINST_PRACTICE.search(stripped):
        return True
    return any(_own_clause(text[:match.start()]) for pattern in _RECOMMENDS for match in pattern.finditer(text))


def _imperative(words: list[str], stripped: str, text: str) -> bool:
    verb, second = words[0].lower(), words[1].lower() if len(words) > 1 else ""
    if second in _NOT_A_VERB_AFTER or (len(words) > 2 and words[2].lower() in _NOUN_PHRASE_VERBS):
        return False
    if verb in DEFENDER_VERBS:
        return not (verb == "consider" and _CONSIDER_EXAMPLE.match(stripped))
    if verb in _WATCH_VERBS and second == "for":
        return True
    return verb in SHARED_VERBS and bool(_ADDRESSES_READER.search(text))


def _own_clause(lead: str) -> bool:
    lead = _LEAD.sub("", lead).strip()
    lead_words = _FIRST_WORDS.findall(lead)
    return (not lead
            or _AGENCY_LIST.fullmatch(lead) is not None  # "FBI, CISA, and MS-ISAC recommend…"
            or lead.endswith((";", ":", "—", "–"))
            or (lead.endswith(",") and (len(lead_words) <= 4 or lead_words[0].lower() in _INTRODUCERS))
            or (bool(lead_words) and lead_words[-1][:1].isupper() and not lead.endswith(("and", "or"))))


def advice_sentences(sentences: Iterable[Sentence]) -> frozenset[int]:
    """Indexes of the sentences that are advice."""
    return frozenset(s.index for s in sentences if is_advice(s.text))
