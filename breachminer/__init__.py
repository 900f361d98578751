"""breachminer: mine public threat reports for the MITRE ATT&CK techniques attackers actually use.

The core package: CLI, settings, record types and the ATT&CK catalog. ATT&CK® is a registered
trademark of The MITRE Corporation; catalog data © 2025 The MITRE Corporation, reproduced and
distributed with its permission (see ``breachminer/data/LICENSE-ATTACK.txt``).
"""

__version__ = "0.1.0"
