//! `dao`: members propose payouts or contract calls, vote on them, and once
//! the quorum is reached the app requests the on-chain action, which the
//! context's next checkpoint carries to the proxy contract.
//!
//! Methods (arguments and results are JSON):
//!
//! - `configure {"threshold"}` or `configure {"fraction": "2/3"}`: sets the
//!   quorum, once, before the first proposal: a fixed number of votes, or a
//!   fraction of the context's members at the time of each vote (rounded
//!   up: "2/3" of 4 members is 3), so the quorum follows membership
//!   changes. Either way only the votes of current members count: a removed
//!   member's earlier vote no longer does.
//! - `propose {"domain", "action", "description"?}` → `{"id"}`: `domain` is
//!   the 41-byte anchor domain in hex (`evm:<chain>:<proxy>` domains can be
//!   given as `{"evm": {"chain_id", "proxy"}}` too); `action` is one of
//!   `{"native": {"to", "amount"}}`, `{"token": {"token", "to", "amount"}}`,
//!   `{"call": {"to", "value", "calldata"}}` (EVM, calldata hex) or
//!   `{"near_call": {"to", "method", "args", "deposit"}}`. Amounts are
//!   decimal strings (u128); EVM accounts `0x` hex, NEAR accounts ids. The
//!   proposer's vote counts.
//! - `vote {"id"}`: the caller's vote; at the threshold the action is
//!   requested (exactly once) and event `executed` is emitted.
//! - views `proposal {"id"}` and `proposals {"after"?, "limit"?}`.
//!
//! Storage: `cfg` (threshold), `next` (next id), `p/<id>` (proposal JSON).

use conclave_sdk::action::{Account, ActionRequest, Domain};
use conclave_sdk::{abort, caller, emit_event, input_json, output_json, request_action, storage};
use serde::{Deserialize, Serialize};

const CFG_KEY: &[u8] = b"cfg";
const NEXT_KEY: &[u8] = b"next";
/// Proposals a `proposals` call returns at most.
const MAX_LIST: u64 = 100;
/// Longest description accepted.
const MAX_DESCRIPTION: usize = 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// A fixed number of votes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<u32>,
    /// `"a/b"`: that fraction of the current members, rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fraction: Option<String>,
}

impl Config {
    /// `(numerator, denominator)` of a fraction quorum; aborts if malformed.
    fn parse_fraction(f: &str) -> (u64, u64) {
        let parsed = f
            .split_once('/')
            .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
        match parsed {
            Some((a, b)) if a >= 1 && b >= 1 && a <= b && b <= 1000 => (a, b),
            _ => abort("fraction must be \"a/b\" with 1 <= a <= b <= 1000"),
        }
    }

    /// Votes a proposal needs among `members` members.
    fn needed(&self, members: usize) -> u64 {
        match (&self.threshold, &self.fraction) {
            (Some(t), _) => u64::from(*t),
            (None, Some(f)) => {
                let (a, b) = Self::parse_fraction(f);
                (members as u64 * a).div_ceil(b).max(1)
            }
            (None, None) => abort("stored config is corrupt"),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ActionSpec {
    Native {
        to: String,
        amount: String,
    },
    Token {
        token: String,
        to: String,
        amount: String,
    },
    Call {
        to: String,
        value: String,
        calldata: String,
    },
    NearCall {
        to: String,
        method: String,
        args: String,
        deposit: String,
    },
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum DomainSpec {
    Hex(String),
    Evm { evm: EvmDomain },
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvmDomain {
    chain_id: u64,
    proxy: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposeArgs {
    domain: DomainSpec,
    action: ActionSpec,
    description: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Proposal {
    id: u64,
    proposer: String,
    description: String,
    /// The domain, 41 bytes hex.
    domain: String,
    action: ActionSpec,
    /// Voters, hex member ids, in vote order.
    votes: Vec<String>,
    executed: bool,
    /// Height of the block that requested the action.
    executed_at: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    after: Option<u64>,
    limit: Option<u64>,
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn amount(s: &str, what: &str) -> u128 {
    s.parse()
        .unwrap_or_else(|_| abort(&format!("{what} is not a decimal u128")))
}

fn evm_address(s: &str, what: &str) -> [u8; 20] {
    hex_decode(s)
        .and_then(|b| b.try_into().ok())
        .unwrap_or_else(|| abort(&format!("{what} is not a 20-byte hex address")))
}

fn domain_of(spec: &DomainSpec) -> Domain {
    match spec {
        DomainSpec::Hex(h) => hex_decode(h)
            .and_then(|b| Domain::from_bytes(&b))
            .unwrap_or_else(|| abort("domain is not a 41-byte EVM or NEAR domain in hex")),
        DomainSpec::Evm { evm } => Domain::evm(evm.chain_id, evm_address(&evm.proxy, "proxy")),
    }
}

fn account(domain: &Domain, s: &str, what: &str) -> Account {
    if domain.is_evm() {
        Account::Evm(evm_address(s, what))
    } else if (2..=64).contains(&s.len()) {
        Account::Near(s.to_owned())
    } else {
        abort(&format!("{what} is not a NEAR account id"))
    }
}

/// The request a proposal makes; aborts on malformed fields.
fn request_of(domain: Domain, spec: &ActionSpec) -> ActionRequest {
    match spec {
        ActionSpec::Native { to, amount: a } => {
            ActionRequest::native_transfer(domain, account(&domain, to, "to"), amount(a, "amount"))
        }
        ActionSpec::Token {
            token,
            to,
            amount: a,
        } => ActionRequest::token_transfer(
            domain,
            account(&domain, token, "token"),
            account(&domain, to, "to"),
            amount(a, "amount"),
        ),
        ActionSpec::Call {
            to,
            value,
            calldata,
        } => {
            if !domain.is_evm() {
                abort("`call` is for EVM domains; use `near_call`");
            }
            let data = hex_decode(calldata).unwrap_or_else(|| abort("calldata is not hex"));
            ActionRequest::contract_call(
                domain,
                account(&domain, to, "to"),
                amount(value, "value"),
                data,
            )
        }
        ActionSpec::NearCall {
            to,
            method,
            args,
            deposit,
        } => {
            if domain.is_evm() {
                abort("`near_call` is for NEAR domains; use `call`");
            }
            if let Account::Near(to) = account(&domain, to, "to") {
                ActionRequest::near_call(
                    domain,
                    &to,
                    method,
                    args.as_bytes(),
                    amount(deposit, "deposit"),
                )
            } else {
                abort("to is not a NEAR account id")
            }
        }
    }
}

fn config() -> Option<Config> {
    storage::get(CFG_KEY).and_then(|b| serde_json::from_slice(&b).ok())
}

fn proposal_key(id: u64) -> Vec<u8> {
    format!("p/{id:020}").into_bytes()
}

fn load(id: u64) -> Proposal {
    storage::get(&proposal_key(id))
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| abort(&format!("no proposal {id}")))
}

fn save(p: &Proposal) {
    match serde_json::to_vec(p) {
        Ok(b) => storage::set(&proposal_key(p.id), &b),
        Err(e) => abort(&format!("cannot encode proposal: {e}")),
    }
}

fn next_id() -> u64 {
    storage::get(NEXT_KEY)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// Counts `voter`'s vote; requests the action when the current members'
/// votes reach the quorum.
fn record_vote(p: &mut Proposal, voter: String, cfg: &Config) {
    if p.executed {
        abort(&format!("proposal {} was already executed", p.id));
    }
    if p.votes.contains(&voter) {
        abort(&format!("{voter} already voted on proposal {}", p.id));
    }
    p.votes.push(voter);
    let members: Vec<String> = conclave_sdk::members().iter().map(|m| hex_encode(m)).collect();
    let counted = p.votes.iter().filter(|v| members.contains(v)).count() as u64;
    if counted >= cfg.needed(members.len()) {
        let domain = hex_decode(&p.domain)
            .and_then(|b| Domain::from_bytes(&b))
            .unwrap_or_else(|| abort("stored domain is corrupt"));
        request_action(&request_of(domain, &p.action));
        p.executed = true;
        p.executed_at = Some(conclave_sdk::block_height());
        emit_event("executed", p.id.to_string().as_bytes());
    }
}

fn configure() {
    let args: Config = input_json();
    if config().is_some() {
        abort("the dao is already configured");
    }
    match (&args.threshold, &args.fraction) {
        (Some(0), None) => abort("threshold must be at least 1"),
        (Some(_), None) => {}
        (None, Some(f)) => {
            Config::parse_fraction(f);
        }
        _ => abort("give exactly one of threshold (a number of votes) or fraction (\"a/b\" of the members)"),
    }
    if let Ok(b) = serde_json::to_vec(&args) {
        storage::set(CFG_KEY, &b);
    }
    output_json(&args);
}

fn propose() {
    let args: ProposeArgs = input_json();
    let cfg = config().unwrap_or_else(|| {
        abort("configure the dao first (`configure {\"threshold\"}` or `{\"fraction\"}`)")
    });
    let description = args.description.unwrap_or_default();
    if description.len() > MAX_DESCRIPTION {
        abort("description too long");
    }
    let domain = domain_of(&args.domain);
    // Validate now, so a bad proposal never reaches a vote.
    let _ = request_of(domain, &args.action);
    let id = next_id();
    storage::set(NEXT_KEY, &(id + 1).to_le_bytes());
    let mut p = Proposal {
        id,
        proposer: hex_encode(&caller()),
        description,
        domain: hex_encode(&domain.0),
        action: args.action,
        votes: Vec::new(),
        executed: false,
        executed_at: None,
    };
    let voter = p.proposer.clone();
    record_vote(&mut p, voter, &cfg);
    save(&p);
    emit_event("proposed", id.to_string().as_bytes());
    output_json(&serde_json::json!({ "id": id, "executed": p.executed }));
}

fn vote() {
    let args: IdArgs = input_json();
    let cfg = config().unwrap_or_else(|| abort("the dao is not configured"));
    let mut p = load(args.id);
    record_vote(&mut p, hex_encode(&caller()), &cfg);
    save(&p);
    output_json(&serde_json::json!({ "id": p.id, "votes": p.votes.len(), "executed": p.executed }));
}

fn proposal() {
    let args: IdArgs = input_json();
    output_json(&load(args.id));
}

fn proposals() {
    let args: ListArgs = input_json();
    let limit = args.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
    let start = args.after.map_or(0, |a| a + 1);
    let end = next_id().min(start.saturating_add(limit));
    let list: Vec<Proposal> = (start..end).map(load).collect();
    output_json(&list);
}

conclave_sdk::methods!(configure, propose, vote, proposal, proposals);
