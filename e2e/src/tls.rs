//! A throw-away PKI for test servers: one CA, server certificates for 127.0.0.1/localhost and
//! client certificates whose subject carries a user and groups (as the kube-apiserver reads them).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::{Error, Result};

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate and its PEM (PKCS#8) private key.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertPair {
    /// Writes `<stem>.crt` and `<stem>.key` into `dir`, returning both paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem)?;
        std::fs::write(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

fn pki(e: rcgen::Error) -> Error {
    Error::Setup(format!("generating test certificates failed: {e}"))
}

impl TestCa {
    /// A new CA with the given common name.
    pub fn new(common_name: &str) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(pki)?;
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, key).map_err(pki)?,
        })
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A serving certificate for `localhost` and `127.0.0.1` (plus `extra_names`).
    pub fn server_cert(&self, extra_names: &[&str]) -> Result<CertPair> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(extra_names.iter().map(|n| n.to_string()));
        let mut params = CertificateParams::new(names).map_err(pki)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate with CN = `user` and one O per group.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<CertPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// An Ed25519 key and its certificate (DER), for signing tokens that trust this CA.
    pub fn token_signer(&self, common_name: &str) -> Result<(KeyPair, Vec<u8>)> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(pki)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki)?;
        Ok((key, cert.der().to_vec()))
    }

    fn sign(&self, mut params: CertificateParams) -> Result<CertPair> {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().map_err(pki)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki)?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A fresh P-256 key pair in PEM: (private PKCS#8, public SPKI). Used for service-account signing.
pub fn key_pair_pem() -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(pki)?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}
