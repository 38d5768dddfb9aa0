"""SBOM and licenses: what is inside a bundle, for auditors and scanners.

``collect_licenses`` copies every installed distribution's license files (and CPython's) into
``app/share/licenses/<name>/``; ``cyclonedx_sbom`` describes the bundle as a CycloneDX 1.6 JSON
document: every package with version, wheel hash and license, the interpreter and the shared
libraries it carries. Both are deterministic: the serial number derives from the input digest
and the timestamp from SOURCE_DATE_EPOCH.
"""

from builder.sbom.cyclonedx import SBOM_SUFFIX, cyclonedx_sbom
from builder.sbom.licenses import collect_licenses

__all__ = ["SBOM_SUFFIX", "collect_licenses", "cyclonedx_sbom"]
