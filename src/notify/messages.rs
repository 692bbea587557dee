//! Every email Switchboard sends: one context struct per message, whose
//! subject, text and HTML are templates under `templates/email/<message>/`.
//! Services decide who hears what; the words live here and in the templates.

use askama::Template;

/// A message ready to be queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A message's context, composed from its three templates.
pub trait Compose {
    fn compose(&self) -> Result<Message, askama::Error>;
}

/// Wires a context struct to its subject, text and HTML templates.
macro_rules! message {
    ($context:ident, $subject:literal, $text:literal, $html:literal) => {
        const _: () = {
            #[derive(Template)]
            #[template(path = $subject)]
            struct Subject<'a>(&'a $context);

            #[derive(Template)]
            #[template(path = $text)]
            struct Text<'a>(&'a $context);

            #[derive(Template)]
            #[template(path = $html)]
            struct Html<'a>(&'a $context);

            impl std::ops::Deref for Subject<'_> {
                type Target = $context;
                fn deref(&self) -> &$context {
                    self.0
                }
            }
            impl std::ops::Deref for Text<'_> {
                type Target = $context;
                fn deref(&self) -> &$context {
                    self.0
                }
            }
            impl std::ops::Deref for Html<'_> {
                type Target = $context;
                fn deref(&self) -> &$context {
                    self.0
                }
            }

            impl Compose for $context {
                fn compose(&self) -> Result<Message, askama::Error> {
                    Ok(Message {
                        subject: Subject(self).render()?.trim().to_owned(),
                        text: Text(self).render()?,
                        html: Html(self).render()?,
                    })
                }
            }
        };
    };
}

/// What every email about one connection shows.
#[derive(Clone, Debug)]
pub struct About {
    pub summary: String,
    /// The mechanism, in words.
    pub mechanism: String,
    /// The kind of request, in words ("connection between two networks").
    pub kind: String,
    pub requester_name: String,
    pub requester_email: String,
    pub reason: String,
    /// The request's page.
    pub url: String,
}

/// To a lead: a request needs their team's approval.
pub struct ApprovalNeeded {
    pub name: String,
    pub about: About,
}
message!(
    ApprovalNeeded,
    "email/approval_needed/subject.txt",
    "email/approval_needed/body.txt",
    "email/approval_needed/body.html"
);

/// To the requester: every team approved.
pub struct Approved {
    pub name: String,
    pub about: About,
}
message!(
    Approved,
    "email/approved/subject.txt",
    "email/approved/body.txt",
    "email/approved/body.html"
);

/// To the requester: a lead rejected, with their comment.
pub struct Rejected {
    pub name: String,
    pub about: About,
    pub comment: String,
}
message!(
    Rejected,
    "email/rejected/subject.txt",
    "email/rejected/body.txt",
    "email/rejected/body.html"
);

/// To the requester: a connection expires soon.
pub struct Expiring {
    pub name: String,
    pub about: About,
    /// When, in words ("2026-12-03 10:00 UTC").
    pub expires_at: String,
    /// Where to renew it.
    pub renew_url: String,
}
message!(
    Expiring,
    "email/expiring/subject.txt",
    "email/expiring/body.txt",
    "email/expiring/body.html"
);

/// To the leads of the requester's team: someone asks to keep a connection longer.
pub struct RenewalAsked {
    pub name: String,
    pub about: About,
    pub asked_by: String,
    /// The current expiry and the one asked for, in words.
    pub expires_at: String,
    pub until: String,
    pub decide_url: String,
}
message!(
    RenewalAsked,
    "email/renewal_asked/subject.txt",
    "email/renewal_asked/body.txt",
    "email/renewal_asked/body.html"
);

/// To whoever asked for a renewal: a lead decided it.
pub struct RenewalDecided {
    pub name: String,
    pub about: About,
    pub approved: bool,
    pub decided_by: String,
    pub comment: String,
    pub expires_at: String,
    pub until: String,
}
message!(
    RenewalDecided,
    "email/renewal_decided/subject.txt",
    "email/renewal_decided/body.txt",
    "email/renewal_decided/body.html"
);

/// To the requester: a request expired before it was set up.
pub struct Expired {
    pub name: String,
    pub about: About,
}
message!(
    Expired,
    "email/expired/subject.txt",
    "email/expired/body.txt",
    "email/expired/body.html"
);

/// To the requester: everything in the plan exists.
pub struct Active {
    pub name: String,
    pub about: About,
}
message!(
    Active,
    "email/active/subject.txt",
    "email/active/body.txt",
    "email/active/body.html"
);

/// To the requester: setting up failed, and why.
pub struct Failed {
    pub name: String,
    pub about: About,
    pub why: String,
}
message!(
    Failed,
    "email/failed/subject.txt",
    "email/failed/body.txt",
    "email/failed/body.html"
);

/// To the requester: everything the connection made is gone.
pub struct Removed {
    pub name: String,
    pub about: About,
}
message!(
    Removed,
    "email/removed/subject.txt",
    "email/removed/body.txt",
    "email/removed/body.html"
);

/// One entry of a digest: a connection (or account), its page, what to say.
#[derive(Clone, Debug)]
pub struct Entry {
    pub summary: String,
    pub url: String,
    pub lines: Vec<String>,
}

/// To an owner: connections of theirs that no longer match what was approved.
pub struct Drifted {
    pub name: String,
    pub entries: Vec<Entry>,
}
message!(
    Drifted,
    "email/drifted/subject.txt",
    "email/drifted/body.txt",
    "email/drifted/body.html"
);

/// To an owner: connections of theirs that match again.
pub struct Recovered {
    pub name: String,
    pub entries: Vec<Entry>,
}
message!(
    Recovered,
    "email/recovered/subject.txt",
    "email/recovered/body.txt",
    "email/recovered/body.html"
);

/// To admins: a provider account the monitor cannot ask.
pub struct AccountUnreachable {
    pub name: String,
    pub account: String,
    pub entries: Vec<Entry>,
}
message!(
    AccountUnreachable,
    "email/account_unreachable/subject.txt",
    "email/account_unreachable/body.txt",
    "email/account_unreachable/body.html"
);

/// One event in a few lines: what happened to a network Switchboard builds
/// (its approval asked, its build failed, it drifted, it matches again), or
/// to a change of a connection (asked, decided, applied).
pub struct PlainNotice {
    pub name: String,
    /// What it is about, starting the subject: "Network payments-new".
    pub about: String,
    /// The subject's end: "drifted from what was built".
    pub subject: String,
    pub headline: String,
    pub lines: Vec<String>,
    /// What to do next, in a sentence.
    pub footer: String,
    pub url: String,
}
message!(
    PlainNotice,
    "email/plain/subject.txt",
    "email/plain/body.txt",
    "email/plain/body.html"
);

/// To anyone an admin names: proof that queue and mail work.
pub struct TestEmail {
    pub portal_url: String,
}
message!(
    TestEmail,
    "email/test_email/subject.txt",
    "email/test_email/body.txt",
    "email/test_email/body.html"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About {
        About {
            summary: "payments-prod ↔ search-prod".into(),
            mechanism: "VPC peering".into(),
            kind: "connection between two networks".into(),
            requester_name: "Rita Requester".into(),
            requester_email: "rita@example.test".into(),
            reason: "search reads payments' events".into(),
            url: "https://switchboard.example.test/connections/42".into(),
        }
    }

    /// The text every connection email has around its own two sentences.
    fn connection_text(headline: &str, detail: &str) -> String {
        format!(
            "Hello Lee,\n\n{headline}\n\n  payments-prod ↔ search-prod\n  Mechanism: VPC peering\n  Requested by Rita Requester <rita@example.test>\n  Reason: search reads payments' events\n\n{detail}\n\nhttps://switchboard.example.test/connections/42\n\n-- \nSwitchboard"
        )
    }

    fn check(message: &dyn Compose, subject: &str, text: &str) {
        let m = message.compose().unwrap();
        assert_eq!(m.subject, subject);
        assert_eq!(m.text.trim_end(), text);
        assert!(m.html.starts_with("<!doctype html>"), "{}", m.html);
    }

    #[test]
    fn connection_emails_say_what_happened_and_link_the_request() {
        let name = || "Lee".to_owned();
        check(
            &ApprovalNeeded {
                name: name(),
                about: about(),
            },
            "Approval needed: payments-prod ↔ search-prod",
            &connection_text(
                "Rita Requester asks for a connection between two networks. Your team must approve it before anything changes.",
                "Open the request to see the exact plan, then approve or reject it.",
            ),
        );
        check(
            &Approved {
                name: name(),
                about: about(),
            },
            "Approved: payments-prod ↔ search-prod",
            &connection_text(
                "Every team involved approved your request.",
                "It is being set up now; the request page shows the progress.",
            ),
        );
        check(
            &Rejected {
                name: name(),
                about: about(),
                comment: "use the shared VPC".into(),
            },
            "Rejected: payments-prod ↔ search-prod",
            &connection_text(
                "Your request was rejected.",
                "The lead's comment: use the shared VPC",
            ),
        );
        check(
            &Expiring {
                name: name(),
                about: about(),
                expires_at: "2026-12-24 18:00 UTC".into(),
                renew_url: "https://switchboard.example/connections/7/renew".into(),
            },
            "Expires soon: payments-prod ↔ search-prod",
            &connection_text(
                "This connection expires at 2026-12-24 18:00 UTC and will then be removed.",
                "If it is still needed, renew it before then: https://switchboard.example/connections/7/renew",
            ),
        );
        check(
            &RenewalAsked {
                name: name(),
                about: about(),
                asked_by: "Rita".into(),
                expires_at: "2026-12-24 18:00 UTC".into(),
                until: "2027-01-24 18:00 UTC".into(),
                decide_url: "https://switchboard.example/connections/7/renew".into(),
            },
            "Renewal to decide: payments-prod ↔ search-prod",
            &connection_text(
                "Rita asks to keep this connection until 2027-01-24 18:00 UTC (it now expires at 2026-12-24 18:00 UTC).",
                "As a lead of the requester's team you decide alone: https://switchboard.example/connections/7/renew",
            ),
        );
        check(
            &RenewalDecided {
                name: name(),
                about: about(),
                approved: false,
                decided_by: "Lena".into(),
                comment: "ask again in January".into(),
                expires_at: "2026-12-24 18:00 UTC".into(),
                until: "2027-01-24 18:00 UTC".into(),
            },
            "Renewal rejected: payments-prod ↔ search-prod",
            &connection_text(
                "The renewal was rejected: the connection still expires at 2026-12-24 18:00 UTC.",
                "Lena decided: ask again in January",
            ),
        );
        check(
            &Expired {
                name: name(),
                about: about(),
            },
            "Expired: payments-prod ↔ search-prod",
            &connection_text(
                "Your request expired before it was set up.",
                "Request it again if it is still needed.",
            ),
        );
        check(
            &Active {
                name: name(),
                about: about(),
            },
            "Active: payments-prod ↔ search-prod",
            &connection_text(
                "Everything in the approved plan now exists.",
                "Switchboard keeps checking that it stays as approved.",
            ),
        );
        check(
            &Failed {
                name: name(),
                about: about(),
                why: "AWS refused: quota".into(),
            },
            "Failed: payments-prod ↔ search-prod",
            &connection_text(
                "Setting up this connection failed.",
                "What went wrong: AWS refused: quota. A lead or an admin can try again from the request page.",
            ),
        );
        check(
            &Removed {
                name: name(),
                about: about(),
            },
            "Removed: payments-prod ↔ search-prod",
            &connection_text(
                "Everything this connection created has been removed.",
                "Request it again if it is needed again.",
            ),
        );
    }

    #[test]
    fn digests_list_each_connection_with_its_lines() {
        let entry = |n: u32| Entry {
            summary: format!("connection {n}"),
            url: format!("https://switchboard.example.test/connections/{n}"),
            lines: vec!["route 10.2.0.0/16 is missing".into()],
        };
        let one = Drifted {
            name: "Lee".into(),
            entries: vec![entry(1)],
        };
        check(
            &one,
            "Drifted: connection 1",
            "Hello Lee,\n\nWhat exists no longer matches what was approved:\n\n* connection 1\n    - route 10.2.0.0/16 is missing\n  https://switchboard.example.test/connections/1\n\nYou will hear again when it matches. A lead can repair it from the connection's page.\n\n-- \nSwitchboard",
        );
        let two = Recovered {
            name: "Lee".into(),
            entries: vec![entry(1), entry(2)],
        };
        assert_eq!(two.compose().unwrap().subject, "2 connections match again");
        let many = Drifted {
            name: "Lee".into(),
            entries: vec![entry(1), entry(2), entry(3)],
        };
        assert_eq!(
            many.compose().unwrap().subject,
            "3 connections drifted from what was approved"
        );
        let account = AccountUnreachable {
            name: "Ada".into(),
            account: "cloud".into(),
            entries: vec![entry(7)],
        };
        let m = account.compose().unwrap();
        assert_eq!(m.subject, "Cannot observe cloud");
        assert!(
            m.text
                .contains("The monitor cannot ask a provider account what exists:")
        );
        assert!(
            m.text
                .contains("Connections in it are not checked until it answers again.")
        );
    }

    #[test]
    fn html_bodies_escape_what_people_typed() {
        let mut about = about();
        about.reason = "<script>alert(1)</script>".into();
        let m = Approved {
            name: "Lee".into(),
            about,
        }
        .compose()
        .unwrap();
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(
            m.text.contains("<script>alert(1)</script>"),
            "plain text is not escaped"
        );
    }

    #[test]
    fn the_test_email_links_the_portal() {
        let m = TestEmail {
            portal_url: "https://switchboard.example.test/".into(),
        }
        .compose()
        .unwrap();
        assert_eq!(m.subject, "Switchboard test email");
        assert!(
            m.text
                .trim_end()
                .ends_with("Switchboard: https://switchboard.example.test/")
        );
        assert!(
            m.html
                .contains("href=\"https://switchboard.example.test/\"")
        );
    }
}
