use super::*;

const PROBE: &str = "access outside the workspace denied: /.gitignore";
const ORIGIN: &str =
    "outbound HTTP to http://git.example.com:80 denied: it is not granted to this plugin";
const SECRET: &str = "secret 'GIT_TOKEN' denied: it is not granted to this action";

fn passed_on(denials: &[&str], said: &str) -> Option<String> {
    let denials: Vec<String> = denials.iter().map(|d| d.to_string()).collect();
    denial_passed_on(&denials, said).cloned()
}

#[test]
fn a_reason_of_the_plugins_own_names_no_denial() {
    let said =
        "http://git.example.com/team/x.git answered HTTP 404: there is no repository at this URL";
    assert_eq!(passed_on(&[PROBE, SECRET], said), None);
}

#[test]
fn a_refusal_passed_on_names_the_denial_of_its_kind() {
    let fs = "/.gitignore: Permission denied (os error 2)";
    assert_eq!(passed_on(&[PROBE, ORIGIN], fs).as_deref(), Some(PROBE));
    let http =
        "request to http://git.example.com/x denied: its origin is not granted to this action";
    assert_eq!(passed_on(&[ORIGIN, PROBE], http).as_deref(), Some(ORIGIN));
    let js_fetch = "fetch https://api.example.com/x failed: TypeError: NetworkError when attempting to fetch resource.";
    assert_eq!(
        passed_on(&[PROBE, ORIGIN], js_fetch).as_deref(),
        Some(ORIGIN)
    );
    let secret =
        "secret 'GIT_TOKEN' is not available: add it to the task or grant it to this plugin";
    assert_eq!(passed_on(&[PROBE], secret), None, "no secret was refused");
    assert_eq!(passed_on(&[PROBE, SECRET], secret).as_deref(), Some(SECRET));
}

#[test]
fn of_several_denials_of_a_kind_the_last_is_named() {
    let first = "access outside the workspace denied: /a";
    let said = "EACCES: permission denied, open '/b'";
    assert_eq!(passed_on(&[first, PROBE], said).as_deref(), Some(PROBE));
}
