//! Model-based properties of refresh families: random sequences of steps (refresh with the
//! live token or an older one, inside or outside the grace window, logout, the clock moving
//! past idle and absolute expiry, unknown tokens) run against the memory store and
//! `domain::refresh` (glued as `routes::auth::refresh_session` glues them) and against a small
//! reference model written from the rules of `domain/refresh.rs`. After every step: the same
//! answer; one live token per family and one token per generation (no fork); a reuse after the
//! grace window has revoked the family; a revoked or expired family has issued nothing.

mod common;

use futures::executor::block_on;
use proptest::prelude::*;

use gatehouse::domain::refresh::{self, Decision, Windows};
use gatehouse::domain::store::memory::MemoryStore;
use gatehouse::domain::store::{NewFamily, PasswordPhc, RevokeReason, Rotation, Store, User};
use gatehouse::primitives::error::Error;
use gatehouse::primitives::platform::SystemRng;

const FAMILY: &str = "fam_1";
const T0: i64 = common::T0;

/// The lifetimes of one run, in ms.
#[derive(Debug, Clone, Copy)]
struct Lifetimes {
    grace: i64,
    idle: i64,
    absolute: i64,
}

fn lifetimes() -> impl Strategy<Value = Lifetimes> {
    (1i64..=120, 300i64..=3_600, 0i64..=7_200).prop_map(|(grace, idle, extra)| Lifetimes {
        grace: grace * 1000,
        idle: idle * 1000,
        absolute: (idle + extra) * 1000,
    })
}

/// How far the clock moves: a little, to an edge of a window (±1 ms), or far.
#[derive(Debug, Clone, Copy)]
enum Advance {
    Ms(i64),
    Grace(i64),
    Idle(i64),
    Absolute(i64),
}

#[derive(Debug, Clone)]
enum Step {
    /// Present the newest token handed out.
    RefreshNewest,
    /// Present any token handed out so far (the newest included).
    RefreshAny(proptest::sample::Index),
    /// Present a well-formed token the store never saw.
    RefreshUnknown,
    /// Log out (revoke the family).
    Logout,
    Wait(Advance),
}

fn step() -> impl Strategy<Value = Step> {
    let advance = prop_oneof![
        3 => (0i64..3_000).prop_map(Advance::Ms),
        2 => (-1i64..=1).prop_map(Advance::Grace),
        1 => (-1i64..=1).prop_map(Advance::Idle),
        1 => (-1i64..=1).prop_map(Advance::Absolute),
    ];
    prop_oneof![
        5 => Just(Step::RefreshNewest),
        4 => any::<proptest::sample::Index>().prop_map(Step::RefreshAny),
        1 => Just(Step::RefreshUnknown),
        1 => Just(Step::Logout),
        5 => advance.prop_map(Step::Wait),
    ]
}

/// A token of the reference model.
#[derive(Debug, Clone)]
struct ModelToken {
    text: String,
    generation: i64,
    rotated_at: Option<i64>,
    /// The index of the token it was rotated to.
    successor: Option<usize>,
    /// Whether its sealed successor is still stored (only the newest rotation keeps one).
    sealed: bool,
}

/// The family as the rules say it stands.
#[derive(Debug)]
struct Model {
    tokens: Vec<ModelToken>,
    revoked: bool,
    last_used: i64,
    expires_at: i64,
}

/// What the model expects of a refresh.
#[derive(Debug, PartialEq)]
enum Expected {
    /// A new token (rotated by this caller).
    Fresh,
    /// The successor this token was already rotated to (a replay within the grace window).
    Replay(usize),
    /// Refused, nothing changed.
    Reject,
    /// Refused, the family revoked.
    Reuse,
}

impl Model {
    fn live(&self, now: i64, l: &Lifetimes) -> bool {
        !self.revoked && now < self.expires_at && self.last_used + l.idle > now
    }

    fn expect(&self, presented: Option<usize>, now: i64, l: &Lifetimes) -> Expected {
        let Some(i) = presented else {
            return Expected::Reject;
        };
        let token = &self.tokens[i];
        if self.revoked || now >= self.expires_at || self.last_used + l.idle <= now {
            return Expected::Reject;
        }
        match token.rotated_at {
            None => Expected::Fresh,
            Some(at) if now - at <= l.grace => match token.successor {
                Some(s) if token.sealed => Expected::Replay(s),
                _ => Expected::Reject,
            },
            Some(_) => Expected::Reuse,
        }
    }
}

/// A refresh as `routes::auth::refresh_session` makes it once the request is read: rotate in
/// the store, decide, and on reuse revoke the family.
fn refresh(store: &MemoryStore, presented: &str, now: i64, l: &Lifetimes) -> Decision {
    let ours = refresh::generate(&SystemRng);
    let rotation = Rotation {
        token_hash: refresh::hash(presented),
        successor_hash: refresh::hash(&ours),
        successor_sealed: refresh::seal(presented, &ours),
        now,
        idle_cutoff: now - l.idle,
        family: None,
        limit: None,
    };
    let Some(state) = block_on(store.rotate_refresh(&rotation)).unwrap().state else {
        return Decision::Reject(Error::InvalidRefreshToken("unknown"));
    };
    let windows = Windows {
        idle_cutoff: rotation.idle_cutoff,
        grace_ms: l.grace,
    };
    let decision = refresh::decide_hashed(
        &state,
        presented,
        &ours,
        &rotation.successor_hash,
        now,
        windows,
    );
    if let Decision::Reuse(_) = decision {
        block_on(store.revoke_family(&state.family.id, RevokeReason::Reuse, now, None)).unwrap();
    }
    decision
}

fn setup(l: &Lifetimes) -> (MemoryStore, Model) {
    let store = MemoryStore::new();
    let first = refresh::generate(&SystemRng);
    let user = User {
        id: "usr_1".into(),
        email: "a@example.com".into(),
        name: None,
        password_hash: PasswordPhc::from_stored("unused".into()),
        roles: vec!["user".into()],
        disabled: false,
        created_at: T0,
        updated_at: T0,
        totp: false,
    };
    let family = NewFamily {
        id: FAMILY.into(),
        user_id: user.id.clone(),
        created_at: T0,
        expires_at: T0 + l.absolute,
        user_agent: None,
        first_token_hash: refresh::hash(&first),
        console: None,
    };
    block_on(store.create_user(&user, Some(&family), None)).unwrap();
    let model = Model {
        tokens: vec![ModelToken {
            text: first,
            generation: 0,
            rotated_at: None,
            successor: None,
            sealed: false,
        }],
        revoked: false,
        last_used: T0,
        expires_at: T0 + l.absolute,
    };
    (store, model)
}

proptest! {
    #![proptest_config(common::prop::config())]

    #[test]
    fn the_family_follows_the_model_and_never_forks(
        l in lifetimes(),
        steps in proptest::collection::vec(step(), 1..14),
    ) {
        let (store, mut model) = setup(&l);
        let mut now = T0;
        for (n, step) in steps.iter().enumerate() {
            let presented = match step {
                Step::Wait(advance) => {
                    now += match *advance {
                        Advance::Ms(ms) => ms,
                        Advance::Grace(d) => l.grace + d,
                        Advance::Idle(d) => l.idle + d,
                        Advance::Absolute(d) => (model.expires_at - now + d).max(0),
                    };
                    continue;
                }
                Step::Logout => {
                    let revoked = block_on(store.revoke_family(FAMILY, RevokeReason::Logout, now, None)).unwrap();
                    prop_assert_eq!(revoked, !model.revoked, "step {}", n);
                    model.revoked = true;
                    continue;
                }
                Step::RefreshNewest => Some(model.tokens.len() - 1),
                Step::RefreshAny(i) => Some(i.index(model.tokens.len())),
                Step::RefreshUnknown => None,
            };
            let text = presented.map_or_else(|| refresh::generate(&SystemRng), |i| model.tokens[i].text.clone());
            let was_live = model.live(now, &l);
            let expected = model.expect(presented, now, &l);
            let decision = refresh(&store, &text, now, &l);
            match (&expected, &decision) {
                (Expected::Fresh, Decision::Issue { token, replay: false }) => {
                    let i = presented.unwrap();
                    prop_assert!(refresh::well_formed(token));
                    prop_assert!(model.tokens.iter().all(|t| t.text != *token), "a token handed out twice");
                    for t in &mut model.tokens {
                        t.sealed = false;
                    }
                    let generation = model.tokens[i].generation + 1;
                    model.tokens.push(ModelToken {
                        text: token.clone(),
                        generation,
                        rotated_at: None,
                        successor: None,
                        sealed: false,
                    });
                    let s = model.tokens.len() - 1;
                    let t = &mut model.tokens[i];
                    t.rotated_at = Some(now);
                    t.successor = Some(s);
                    t.sealed = true;
                    model.last_used = now;
                }
                (Expected::Replay(s), Decision::Issue { token, replay: true }) => {
                    prop_assert_eq!(token, &model.tokens[*s].text, "step {}: not the winner's successor", n);
                }
                (Expected::Reject, Decision::Reject(Error::InvalidRefreshToken(_))) => {}
                (Expected::Reuse, Decision::Reuse(cause)) => {
                    prop_assert_eq!(cause.generation, model.tokens[presented.unwrap()].generation);
                    model.revoked = true;
                }
                _ => {
                    return Err(TestCaseError::fail(format!(
                        "step {n} ({step:?}) at +{} ms: the model expects {expected:?}, got {decision:?}",
                        now - T0
                    )));
                }
            }
            // A revoked, expired or idle family issues nothing.
            if !was_live {
                prop_assert!(!matches!(decision, Decision::Issue { .. }), "step {}: a dead family issued", n);
            }
            // No fork: one unrotated token, one token per generation, all in the family.
            prop_assert_eq!(block_on(store.live_tokens(FAMILY)).unwrap(), 1);
            let mut generations = Vec::new();
            for t in &model.tokens {
                let state = block_on(store.token_state(&refresh::hash(&t.text))).unwrap().unwrap();
                prop_assert_eq!(&state.family.id, FAMILY);
                prop_assert_eq!(state.generation, t.generation);
                prop_assert_eq!(state.rotated_at, t.rotated_at);
                prop_assert_eq!(state.successor_sealed.is_some(), t.sealed);
                prop_assert!(!generations.contains(&state.generation), "two tokens of generation {}", state.generation);
                generations.push(state.generation);
            }
            // Reuse revokes the family, and only reuse or a logout does.
            let family = block_on(store.family(FAMILY)).unwrap().unwrap();
            prop_assert_eq!(family.revoked_at.is_some(), model.revoked);
            if expected == Expected::Reuse {
                prop_assert_eq!(family.revoke_reason.as_deref(), Some("reuse"));
            }
            prop_assert_eq!(family.last_used_at, model.last_used);
        }
    }
}
