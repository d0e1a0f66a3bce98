"""ACM certificates: requested through moto's ACM, so DescribeCertificate returns them (never issued for real)."""

from __future__ import annotations

from typing import Any

from moto.acm.models import AWSCertificateManagerBackend, acm_backends

from devenv.emulator.models.base import DevenvModel, required, tag_list


def backend(account_id: str, region_name: str) -> AWSCertificateManagerBackend:
    return acm_backends[account_id][region_name]


class Certificate(DevenvModel):
    """AWS::CertificateManager::Certificate; Ref is the ARN. DNS validation is not waited for; any change
    replaces the certificate, as on AWS."""

    TYPE = "AWS::CertificateManager::Certificate"

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Certificate:
        arn = backend(account_id, region_name).request_certificate(
            domain_name=required(properties, "DomainName", cls.TYPE),
            idempotency_token=None,  # type: ignore[arg-type]
            subject_alt_names=properties.get("SubjectAlternativeNames") or [],
            tags=tag_list(properties),
            cert_authority_arn=properties.get("CertificateAuthorityArn"),
        )
        return cls(arn)

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_certificate(self.physical_id)
