"""Defender advice is not observation: advice sentences, and what the sighting rule does with them."""

from __future__ import annotations

import pytest

from breachminer.catalog import AttackCatalog
from breachminer.records import DocumentText, Mention
from extractors.advice import advice_sentences, is_advice
from extractors.pipeline import DocumentAnalyzer
from extractors.sentences import split_sentences
from extractors.sightings import decide_sightings


@pytest.mark.parametrize("text", [
    "- Audit user accounts with administrative privileges and configure access controls with least privilege in mind.",
    "• Implement network segmentation between IT and OT networks.",
    "Scan for open or listening ports and mediate those that are not needed.",
    "Use and maintain anti-virus software – it protects your computer against most known viruses.",
    "Disable Remote Desktop Protocol where possible.",
    "Organizations should restrict the use of PowerShell to administrators.",
    "CISA and FBI recommend that network defenders monitor for scheduled tasks.",
    "It is recommended to block macros in documents from the internet.",
    "3. Ensure all shared and networked drives are disconnected.",
    "Specifically, organizations should look for unexpected PsExec.exe processes.",
    "To help prevent attacks by such groups, we suggest that organizations conduct phishing awareness training.",
    "Follow Ransomware Best Practices",
    "Strategic Mitigations Organizations should review their backups.",  # a heading run into the sentence
    "Microsoft has released a patch for PrintNightmare — we encourage all enterprises to patch immediately.",
    "Microsoft recommends that customers enable attack surface reduction rules.",
    "FBI, CISA, and MS-ISAC recommend organizations audit remote access tools.",
    "The authoring agencies recommend restricting the use of PowerShell.",
    "Strongly consider disabling PowerShell for non-administrative users.",
    "Monitor for unusual use of remote access software such as AnyDesk.",
    "Mitigations Implement network segmentation to limit lateral movement.",  # a heading run in
])
def test_recommendations_are_advice(text: str) -> None:
    assert is_advice(text)


@pytest.mark.parametrize("text", [
    "Disable the Windows firewall, using netsh.exe",  # a bot command in a capability list
    "Upload file to the C2 server",
    "The actors used PowerShell to download Cobalt Strike beacons.",
    "Use of valid accounts allowed the actor to move laterally.",
    "Monitor clipboard contents",
    "The malware disables Windows Defender and deletes volume shadow copies.",
    "Scan results were sent to the attacker over HTTP.",
    "Patch is applied in memory to lsass.exe, which lets any password authenticate.",
    "Use the SeDebugPrivilege function to acquire the necessary administrator privileges.",  # attack steps
    "Establish Accounts: Email Accounts",  # an ATT&CK technique name, as advisories list them
    "Review_Report15-10.exe",  # a file name
    "Users must enable macros for the malicious code to execute.",
    "By default, administrators must approve a UAC prompt, which the malware bypasses with fodhelper.exe.",
    "Contrary to best practices, the domain administrator password was reused, which let the actor move laterally.",
    "The actors exploited CVE-2021-44228 on the VMware Horizon server, which CISA recommends patching immediately.",
    "Audit logs showed that the actor created a new domain administrator account.",
    "Consider the following command line, which the attacker used to dump LSASS memory with comsvcs.dll:",
    "Disable Defender on all hosts through a GPO.",  # an attacker's playbook
    "Upgrade the implant with a new binary downloaded from the C2 server",
    "These suggest that the attacker's motives are not financial but aim to extract sensitive information.",
    "Evidence suggests that as early as October 2019, these attackers were testing their ability to insert code.",
    "This encourages the victim to enable macros.",
    # an observation that ends with a word to defenders
    "Together these amount to the Registry Run Keys / Startup Folder sub-technique plus Scheduled Task/Job, "
    "and defenders should expect all three to need cleaning.",
])
def test_observations_are_not_advice(text: str) -> None:
    assert not is_advice(text)


def _mention(tid: str, method: str, score: float, sentence: int) -> Mention:
    return Mention(sentence, tid, method, score, "x", 0, 1)


def test_evidence_from_advice_sentences_counts_only_as_an_explicit_id() -> None:
    sentences = split_sentences(
        "The actor moved laterally with RDP.\n\nDisable Remote Desktop Protocol where possible.\n\n"
        "Restrict PowerShell execution to administrators (T1059.001)."
    )
    assert advice_sentences(sentences) == {1, 2}
    mentions = [_mention("T1021.001", "name", 0.85, 1), _mention("T1059.001", "id", 0.97, 2),
                _mention("T1059.001", "name", 0.85, 2), _mention("T1047", "classifier", 0.99, 2)]
    counted = {s.technique_id for s in decide_sightings(mentions, 0.6, sentences)}
    assert counted == {"T1059.001"}
    [cited] = decide_sightings(mentions, 0.6, sentences)
    assert cited.methods == ("id",) and cited.n_mentions == 1  # the advice name match is set aside
    # the same evidence in an observation counts, and without sentences every mention counts
    assert {s.technique_id for s in decide_sightings([_mention("T1021.001", "name", 0.85, 0)], 0.6, sentences)} == {
        "T1021.001"}
    assert {s.technique_id for s in decide_sightings(mentions, 0.6)} == {"T1021.001", "T1059.001", "T1047"}


def test_a_report_keeps_advice_mentions_but_does_not_count_them() -> None:
    analyzer = DocumentAnalyzer(AttackCatalog.load())
    text = ("The operators created a scheduled task to run the loader at logon.\n\n"
            "Mitigations\n\nOrganizations should disable Windows Management Instrumentation on workstations.")
    analysis = analyzer.analyse_text(DocumentText("text", text), "0" * 64, len(text))
    mentioned = {m.technique_id for m in analysis.mentions}
    sighted = {s.technique_id for s in analysis.sightings}
    assert {"T1053.005", "T1047"} <= mentioned  # both stay traceable in the mentions
    assert "T1053.005" in sighted and "T1047" not in sighted


def test_a_heading_in_capitals_run_into_a_recommendation_is_decided_at_once() -> None:
    """"TECHNICAL DETAILS AND INDICATORS OF COMPROMISE the actor…, and CISA recommends…": the pattern for a
    list of agencies before "recommend" once split every capitalised word every possible way (hours)."""
    from conftest import finishes

    output = finishes(
        "from extractors.advice import is_advice\n"
        "heading = 'TECHNICAL DETAILS AND INDICATORS OF COMPROMISE APPENDIX A ' * 3\n"
        "print(is_advice(heading + 'the actor used PowerShell, and CISA recommends blocking it.'))\n"
        "print(is_advice('FBI, CISA, and MS-ISAC recommend that organizations patch.'))\n")
    assert output.split() == ["False", "True"]


# A warehouse's sightings name the rule that decided them, and retag recomputes those decided by another
# one; so a change to the advice rule must come with a new RULE_VERSION (then update this digest).
# 55b6ada126f7 → 8c1026f13c34 kept v4: the agency-list pattern made possessive decides every input the old
# one finished on exactly as before (it only no longer hangs on a lead in capitals), so nothing needs retagging.
ADVICE_RULE = ("noisy-or-top2-v4", "8c1026f13c34")


def test_the_rule_version_changes_with_the_advice_rule() -> None:
    import hashlib
    from pathlib import Path

    import extractors.advice
    from extractors.sightings import RULE_VERSION

    digest = hashlib.sha256(Path(extractors.advice.__file__).read_bytes()).hexdigest()[:12]
    assert (RULE_VERSION, digest) == ADVICE_RULE, "extractors/advice.py changed: bump RULE_VERSION"
