//! Just enough of the DNS wire format (RFC 1035) to ask the server itself one
//! question over UDP and read what it answers: the proof that a record
//! resolves, not only that the API holds it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The type code of A, AAAA and CNAME.
fn type_code(kind: &str) -> Option<u16> {
    match kind {
        "A" => Some(1),
        "CNAME" => Some(5),
        "AAAA" => Some(28),
        _ => None,
    }
}

/// A query for `name` (absolute or not) of type `code`, with id `id`.
fn query(id: u16, name: &str, code: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query; counts: one question.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.push(0);
    q.extend_from_slice(&code.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// The name at `at` (labels, or a pointer to them), and where what follows it starts.
fn name_at(packet: &[u8], mut at: usize) -> Result<(String, usize), String> {
    let mut labels = Vec::new();
    let mut end = None;
    // Pointers may chain; a packet is small, so this bounds any loop.
    for _ in 0..128 {
        let len = *packet.get(at).ok_or("a name runs past the answer")? as usize;
        if len & 0xc0 == 0xc0 {
            let low = *packet.get(at + 1).ok_or("a pointer runs past the answer")? as usize;
            end.get_or_insert(at + 2);
            at = ((len & 0x3f) << 8) | low;
            continue;
        }
        if len == 0 {
            let name = format!("{}.", labels.join("."));
            return Ok((name, end.unwrap_or(at + 1)));
        }
        let label = packet
            .get(at + 1..at + 1 + len)
            .ok_or("a label runs past the answer")?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += 1 + len;
    }
    Err("a name points in circles".into())
}

/// The values of the answers of type `code` in a response to query `id`.
fn answers(packet: &[u8], id: u16, code: u16) -> Result<Vec<String>, String> {
    let word = |at: usize| -> Result<u16, String> {
        packet
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "the answer is cut short".to_owned())
    };
    if word(0)? != id {
        return Err("the answer is to another question".into());
    }
    let rcode = word(2)? & 0x000f;
    if rcode == 3 {
        return Ok(Vec::new()); // no such name
    }
    if rcode != 0 {
        return Err(format!("the server answered with error code {rcode}"));
    }
    let (questions, count) = (word(4)?, word(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = name_at(packet, at)?.1 + 4;
    }
    let mut found = Vec::new();
    for _ in 0..count {
        at = name_at(packet, at)?.1;
        let (kind, length) = (word(at)?, word(at + 8)? as usize);
        let data = at + 10;
        let rdata = packet
            .get(data..data + length)
            .ok_or("a record runs past the answer")?;
        if kind == code {
            found.push(match (kind, rdata.len()) {
                (1, 4) => Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string(),
                (28, 16) => {
                    let bytes: [u8; 16] = rdata.try_into().map_err(|_| "a bad AAAA record")?;
                    Ipv6Addr::from(bytes).to_string()
                }
                (5, _) => name_at(packet, data)?.0,
                _ => return Err("a record of the wrong size".into()),
            });
        }
        at = data + length;
    }
    Ok(found)
}

/// What `name` of type `kind` resolves to at `server` (`host:port`), asked over UDP.
pub(super) async fn resolve(server: &str, name: &str, kind: &str) -> Result<Vec<String>, String> {
    let code = type_code(kind).ok_or_else(|| format!("{kind} records are not resolved"))?;
    let id = u16::from_be_bytes([
        uuid::Uuid::new_v4().as_bytes()[0],
        uuid::Uuid::new_v4().as_bytes()[1],
    ]);
    let bind = if server.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    socket
        .connect(server)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    socket
        .send(&query(id, name, code))
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf))
        .await
        .map_err(|_| format!("{server} did not answer within 3 s"))?
        .map_err(|e| format!("{server}: {e}"))?;
    answers(&buf[..n], id, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response as a server writes it: the question echoed, then answers
    /// whose names point back at it.
    fn response(id: u16, name: &str, code: u16, records: &[&[u8]]) -> Vec<u8> {
        let mut p = query(id, name, code);
        p[2] = 0x84; // a response, authoritative
        p[7] = u8::try_from(records.len()).unwrap();
        for rdata in records {
            p.extend_from_slice(&[0xc0, 12]); // the question's name
            p.extend_from_slice(&code.to_be_bytes());
            p.extend_from_slice(&[0, 1, 0, 0, 1, 44]);
            p.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
            p.extend_from_slice(rdata);
        }
        p
    }

    #[test]
    fn answers_are_read_back_whatever_their_type() {
        let a = response(7, "db.example.com.", 1, &[&[10, 1, 2, 3]]);
        assert_eq!(answers(&a, 7, 1).unwrap(), ["10.1.2.3"]);
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[15] = 1;
        let aaaa = response(8, "db.example.com", 28, &[&v6]);
        assert_eq!(answers(&aaaa, 8, 28).unwrap(), ["2001::1"]);
        // A CNAME's target: "www" and a pointer to the question's name.
        let cname = response(9, "db.example.com", 5, &[&[3, b'w', b'w', b'w', 0xc0, 12]]);
        assert_eq!(answers(&cname, 9, 5).unwrap(), ["www.db.example.com."]);
    }

    #[test]
    fn a_wrong_or_broken_answer_is_said_not_guessed() {
        let a = response(7, "db.example.com", 1, &[&[10, 1, 2, 3]]);
        assert!(answers(&a, 8, 1).is_err(), "another question's answer");
        assert!(answers(&a[..a.len() - 2], 7, 1).is_err(), "cut short");
        let mut nx = query(7, "nothing.example.com", 1);
        nx[3] = 0x03;
        assert_eq!(answers(&nx, 7, 1).unwrap(), Vec::<String>::new());
        let mut looped = response(7, "x.example", 5, &[&[0xc0, 0]]);
        let at = looped.len() - 2;
        looped[at + 1] = u8::try_from(at).unwrap();
        assert!(answers(&looped, 7, 5).is_err(), "a pointer to itself");
    }
}
