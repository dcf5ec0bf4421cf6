//! The client side of git's smart-HTTP push (protocol v0, which every git server
//! speaks): read the refs the server advertises, then send ref updates and a pack to
//! `git-receive-pack` and read its report. Requests go through `wasi:http`, so they
//! reach only origins the operator granted.

use std::collections::BTreeMap;

use base64::Engine as _;
use scaffolder_plugin_sdk::{ActionError, Result, http};

use crate::objects::ObjectId;
use crate::pkt_line::{self, Line};

/// The user name sent with a token: GitHub documents `x-access-token`; Gitea, Forgejo,
/// GitLab and `git http-backend` behind basic auth accept any name with a token.
const TOKEN_USER: &str = "x-access-token";
const AGENT: &str = concat!("agent=scaffolder-publish/", env!("CARGO_PKG_VERSION"));

/// A remote repository reached over smart HTTP.
pub struct Remote {
    url: String,
    authorization: Option<String>,
}

/// What `info/refs` told: the branches and tags that exist, and what the server can do.
#[derive(Debug, Default)]
pub struct Advertisement {
    pub refs: BTreeMap<String, ObjectId>,
    pub capabilities: Vec<String>,
}

impl Remote {
    /// `url` is the repository's clone URL; `token` is sent with HTTP basic auth.
    pub fn new(url: &str, token: Option<&str>) -> Self {
        let authorization = token.map(|token| {
            let pair = format!("{TOKEN_USER}:{token}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Self {
            url: url.trim_end_matches('/').to_owned(),
            authorization,
        }
    }

    /// `GET <url>/info/refs?service=git-receive-pack`.
    pub fn advertised_refs(&self) -> Result<Advertisement> {
        let url = format!("{}/info/refs?service=git-receive-pack", self.url);
        let response = http::request("GET", &url, &self.headers(None), None)?;
        self.check_status(response.status, &response.body)?;
        let content_type = response.header("content-type").unwrap_or("");
        if content_type != "application/x-git-receive-pack-advertisement" {
            return Err(ActionError::failed(format!(
                "{} did not answer as a smart-HTTP git server (content type '{content_type}'); \
                 check that the URL is the repository's clone URL",
                self.url
            )));
        }
        parse_advertisement(&response.body).map_err(|err| {
            ActionError::failed(format!("{} sent an unreadable ref list: {err}", self.url))
        })
    }

    /// Sets `refs/heads/<branch>` from `old` (zero: it must not exist) to `new`, sending
    /// `pack` with the objects the server lacks.
    pub fn push(&self, branch: &str, old: ObjectId, new: ObjectId, pack: &[u8]) -> Result<()> {
        let refname = format!("refs/heads/{branch}");
        let mut body = Vec::with_capacity(pack.len() + 128);
        pkt_line::write(
            &mut body,
            format!("{old} {new} {refname}\0report-status {AGENT}\n").as_bytes(),
        );
        pkt_line::flush(&mut body);
        body.extend_from_slice(pack);

        let url = format!("{}/git-receive-pack", self.url);
        let length = body.len().to_string();
        let response = http::request("POST", &url, &self.headers(Some(&length)), Some(&body))?;
        self.check_status(response.status, &response.body)?;
        check_report(&response.body, &refname)
            .map_err(|err| ActionError::failed(format!("{} refused the push: {err}", self.url)))
    }

    fn headers<'a>(&'a self, content_length: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut headers = vec![("user-agent", "git/2.0 (scaffolder-publish)")];
        if let Some(authorization) = &self.authorization {
            headers.push(("authorization", authorization));
        }
        if let Some(length) = content_length {
            headers.push(("content-type", "application/x-git-receive-pack-request"));
            headers.push(("accept", "application/x-git-receive-pack-result"));
            headers.push(("content-length", length));
        }
        headers
    }

    fn check_status(&self, status: u16, body: &[u8]) -> Result<()> {
        let hint = match status {
            200 => return Ok(()),
            401 if self.authorization.is_none() => "it wants credentials: give the action a token",
            401 | 403 => {
                "it refused the token: check that the token is valid and may push to this repository"
            }
            404 => {
                "there is no repository at this URL: create it on the git host first, or check the URL"
            }
            _ => "the git server failed",
        };
        let detail = String::from_utf8_lossy(&body[..body.len().min(200)]);
        let detail = detail.trim();
        // The server's own words when it sent any (git http-backend sends none for 404).
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        Err(ActionError::failed(format!(
            "{} answered HTTP {status}: {hint}{detail}",
            self.url
        )))
    }
}

fn parse_advertisement(body: &[u8]) -> std::result::Result<Advertisement, String> {
    let lines = pkt_line::parse(body)?;
    let mut lines = lines.into_iter().peekable();
    // Smart HTTP starts with `# service=git-receive-pack` and a flush.
    if let Some(Line::Data(first)) = lines.peek()
        && first.starts_with(b"# service=")
    {
        lines.next();
        if lines.next() != Some(Line::Flush) {
            return Err("no flush after the service line".into());
        }
    }
    let mut advertisement = Advertisement::default();
    for line in lines {
        let Line::Data(data) = line else { break };
        let data = data.strip_suffix(b"\n").unwrap_or(data);
        let (reference, capabilities) = match data.iter().position(|b| *b == 0) {
            Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
            None => (data, None),
        };
        if let Some(capabilities) = capabilities {
            advertisement.capabilities = String::from_utf8_lossy(capabilities)
                .split(' ')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
        }
        let reference = String::from_utf8_lossy(reference);
        let (id, name) = reference
            .split_once(' ')
            .ok_or_else(|| format!("bad ref line {reference:?}"))?;
        let id = ObjectId::parse_hex(id).ok_or_else(|| format!("bad object name {id:?}"))?;
        // An empty repository advertises only its capabilities, on a fake ref.
        if name != "capabilities^{}" {
            advertisement.refs.insert(name.to_owned(), id);
        }
    }
    Ok(advertisement)
}

/// Reads `report-status`: `unpack ok`, then `ok <ref>` or `ng <ref> <reason>`.
fn check_report(body: &[u8], refname: &str) -> std::result::Result<(), String> {
    let mut unpacked = false;
    let mut updated = false;
    for line in pkt_line::parse(body)? {
        let Line::Data(data) = line else { continue };
        let text = String::from_utf8_lossy(data);
        let text = text.trim_end();
        if let Some(status) = text.strip_prefix("unpack ") {
            if status != "ok" {
                return Err(format!("it could not unpack the objects: {status}"));
            }
            unpacked = true;
        } else if let Some(rest) = text.strip_prefix("ng ") {
            let reason = rest.strip_prefix(refname).unwrap_or(rest).trim();
            return Err(format!("{refname} was not updated: {reason}"));
        } else if text.strip_prefix("ok ") == Some(refname) {
            updated = true;
        }
    }
    match (unpacked, updated) {
        (true, true) => Ok(()),
        _ => Err(format!(
            "its report does not confirm {refname}: {:?}",
            String::from_utf8_lossy(body)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(payloads: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            if p.is_empty() {
                pkt_line::flush(&mut out);
            } else {
                pkt_line::write(&mut out, p.as_bytes());
            }
        }
        out
    }

    #[test]
    fn an_empty_repository_advertises_no_refs() {
        let body = lines(&[
            "# service=git-receive-pack\n",
            "",
            "0000000000000000000000000000000000000000 capabilities^{}\0report-status delete-refs ofs-delta\n",
            "",
        ]);
        let advertisement = parse_advertisement(&body).unwrap();
        assert!(advertisement.refs.is_empty());
        assert!(
            advertisement
                .capabilities
                .contains(&"report-status".to_owned())
        );
    }

    #[test]
    fn existing_branches_are_listed() {
        let sha = "ce013625030ba8dba906f756967f9e9ca394464a";
        let body = lines(&[
            "# service=git-receive-pack\n",
            "",
            &format!("{sha} refs/heads/main\0report-status\n"),
            &format!("{sha} refs/tags/v1\n"),
            "",
        ]);
        let advertisement = parse_advertisement(&body).unwrap();
        assert_eq!(
            advertisement.refs["refs/heads/main"],
            ObjectId::parse_hex(sha).unwrap()
        );
        assert_eq!(advertisement.refs.len(), 2);
    }

    #[test]
    fn reports_are_checked() {
        let ok = lines(&["unpack ok\n", "ok refs/heads/main\n", ""]);
        assert_eq!(check_report(&ok, "refs/heads/main"), Ok(()));
        let rejected = lines(&["unpack ok\n", "ng refs/heads/main non-fast-forward\n", ""]);
        assert_eq!(
            check_report(&rejected, "refs/heads/main").unwrap_err(),
            "refs/heads/main was not updated: non-fast-forward"
        );
        let broken = lines(&["unpack index-pack abnormal exit\n", ""]);
        assert!(
            check_report(&broken, "refs/heads/main")
                .unwrap_err()
                .contains("could not unpack")
        );
    }
}
