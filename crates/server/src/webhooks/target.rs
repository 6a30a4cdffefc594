//! Where webhooks may go. Unless `allow_private_targets` is set, a target whose host is or
//! resolves to a loopback, private, link-local, shared (CGNAT), multicast, broadcast or
//! unspecified address is refused: at config time for literal IPs and `localhost`, and at
//! every connection for names (the delivery client resolves through [`GuardedResolver`], so the
//! address checked is the address connected to: a name cannot be re-pointed between the check
//! and the request).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Whether a webhook may not be sent to `ip` without `allow_private_targets`.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || is_v4_compatible_internal(v6)
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network" 0.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64.0.0/10
}

/// `::a.b.c.d` (deprecated IPv4-compatible addresses) over an internal IPv4 address.
fn is_v4_compatible_internal(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    s[..6].iter().all(|&x| x == 0) && {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        let v4 = Ipv4Addr::new(a, b, c, d);
        !v4.is_unspecified() && is_internal_v4(v4)
    }
}

/// Checks a webhook URL at config time: `http` or `https`, a host, and, unless
/// `allow_private` is set, no internal literal IP and no `localhost`.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme `{}` is not http or https",
            url.scheme()
        ));
    }
    let host = url.host().ok_or_else(|| "the URL has no host".to_owned())?;
    if allow_private {
        return Ok(());
    }
    let internal = match host {
        Host::Ipv4(ip) => is_internal(IpAddr::V4(ip)),
        Host::Ipv6(ip) => is_internal(IpAddr::V6(ip)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if internal {
        return Err(format!(
            "the host `{host}` is a loopback, private or link-local address; webhooks go there only with `allow_private_targets = true`"
        ));
    }
    Ok(())
}

/// Resolves names with the system resolver and refuses internal addresses (unless allowed).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Whether internal addresses are allowed after all.
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| allow_private || !is_internal(a.ip()))
                .collect();
            if allowed.is_empty() {
                let why: Box<dyn std::error::Error + Send + Sync> = if resolved.is_empty() {
                    format!("`{host}` resolves to no address").into()
                } else {
                    format!(
                        "`{host}` resolves to a loopback, private or link-local address; webhooks go there only with `allow_private_targets = true`"
                    )
                    .into()
                };
                return Err(why);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP")
    }

    #[test]
    fn internal_addresses() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
        ] {
            assert!(is_internal(ip(s)), "{s} is internal");
        }
        for s in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn config_time_check() {
        let url = |s: &str| Url::parse(s).expect("a URL");
        assert!(check_url(&url("https://hooks.example.com/in"), false).is_ok());
        assert!(check_url(&url("http://93.184.216.34:8080/in"), false).is_ok());
        for refused in [
            "http://127.0.0.1:9000/in",
            "http://localhost/in",
            "http://LOCALHOST./in",
            "http://api.localhost/in",
            "http://[::1]/in",
            "http://10.0.0.5/in",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
        ] {
            let error = check_url(&url(refused), false).expect_err(refused);
            assert!(error.contains("allow_private_targets"), "{error}");
            assert!(
                check_url(&url(refused), true).is_ok(),
                "{refused} when allowed"
            );
        }
        assert!(check_url(&url("ftp://example.com/"), true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let refused = GuardedResolver {
            allow_private: false,
        }
        .resolve(name)
        .await;
        let error = refused.err().expect("localhost resolves to loopback only");
        assert!(
            error.to_string().contains("allow_private_targets"),
            "{error}"
        );
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let allowed = GuardedResolver {
            allow_private: true,
        }
        .resolve(name)
        .await
        .expect("allowed");
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}
