//! The tolerant readers against the shapes vendors send: missing, null, mistyped and unreadable.

use super::*;

fn t(s: &str) -> String {
    parse_timestamp(s)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

#[derive(Debug, PartialEq, Deserialize)]
struct Item {
    #[serde(deserialize_with = "id")]
    id: String,
}

#[derive(Debug, PartialEq, Deserialize)]
struct List {
    #[serde(default, deserialize_with = "lenient_vec")]
    items: Vec<Item>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum Envelope {
    Wrapped { list: List },
    Bare(List),
}

fn ids(list: &List) -> Vec<&str> {
    list.items.iter().map(|i| i.id.as_str()).collect()
}

#[test]
fn a_list_drops_the_items_it_cannot_read_and_keeps_the_rest() {
    let read = |body: &str| from_slice::<List>(body.as_bytes()).expect(body);
    assert_eq!(
        ids(&read(r#"{"items": [{"id": 1}, {"id": "b"}]}"#)),
        ["1", "b"]
    );
    assert_eq!(
        ids(&read(
            r#"{"items": [{"id": 1}, "junk", {"name": "no id"}, {"id": {}}, {"id": 4}]}"#
        )),
        ["1", "4"]
    );
    assert_eq!(ids(&read(r#"{"items": null}"#)), Vec::<&str>::new());
    assert_eq!(ids(&read("{}")), Vec::<&str>::new());
    // Inside an untagged envelope (serde buffers the body first), alike.
    for body in [
        r#"{"list": {"items": [{"id": 1}, "junk", {"id": 2}]}}"#,
        r#"{"items": [{"id": 1}, "junk", {"id": 2}]}"#,
    ] {
        let (Envelope::Wrapped { list } | Envelope::Bare(list)) =
            from_slice::<Envelope>(body.as_bytes()).expect(body);
        assert_eq!(ids(&list), ["1", "2"], "{body}");
    }
    // A list of items counts what the vendor sent, read or not.
    let items: Vec<super::Item<Item>> =
        from_slice(br#"[{"id": 1}, "junk", {"id": 3}]"#).expect("items");
    assert_eq!(items.len(), 3);
    let read: Vec<String> = without_raw(items).into_iter().map(|(i, _)| i.id).collect();
    assert_eq!(read, ["1", "3"]);
    // Not JSON at all is still an error.
    assert!(from_slice::<List>(br#"{"items": [{"id": 1}"#).is_err());
    // The strict attempt leaves nothing behind: a later plain read is lenient.
    let later: List = serde_json::from_str(r#"{"items": ["junk", {"id": 7}]}"#).expect("lenient");
    assert_eq!(ids(&later), ["7"]);
}

#[test]
fn parses_every_vendor_format() {
    assert_eq!(t("2026-01-15T10:30:00Z"), "2026-01-15T10:30:00+00:00");
    assert_eq!(t("2024-06-21T05:08:06+02:00"), "2024-06-21T03:08:06+00:00");
    assert_eq!(t("2020-11-04 11:11:45"), "2020-11-04T11:11:45+00:00");
    assert_eq!(
        t("2026-01-15T10:30:00.123Z"),
        "2026-01-15T10:30:00.123+00:00"
    );
    assert_eq!(t("2026-01-15T10:30:00"), "2026-01-15T10:30:00+00:00");
    assert_eq!(t("2026-01-15 10:30:00+0200"), "2026-01-15T08:30:00+00:00");
    assert_eq!(t("yesterday"), "");
}

#[derive(Debug, PartialEq, Deserialize)]
struct Person {
    id: Id,
    name: Text,
}

impl From<String> for Person {
    fn from(id: String) -> Person {
        Person {
            id: Some(id).into(),
            name: Text::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Fields {
    id: Id,
    text: Text,
    time: Time,
    flag: Flag,
    count: Count,
}

#[test]
fn a_field_reads_as_its_type_says_and_is_none_when_it_cannot() {
    let read = |body: &str| from_slice::<Fields>(body.as_bytes()).expect(body);
    let sent = read(
        r#"{"id": 7, "text": 7, "time": 1700000000, "flag": "1", "count": "12", "other": []}"#,
    );
    assert_eq!(sent.id.as_deref(), Some("7"));
    assert_eq!(sent.text.as_deref(), Some("7"));
    assert_eq!(sent.time.map(|t| t.timestamp()), Some(1_700_000_000));
    assert_eq!((*sent.flag, *sent.count), (Some(true), Some(12)));
    // An empty string is no id, but it is text; a bool is text, and no id.
    let empty = read(r#"{"id": "", "text": "", "flag": 0}"#);
    assert_eq!(
        (empty.id.as_deref(), empty.text.as_deref()),
        (None, Some(""))
    );
    assert_eq!(*empty.flag, Some(false));
    let bools = read(r#"{"id": true, "text": true}"#);
    assert_eq!(
        (bools.id.as_deref(), bools.text.as_deref()),
        (None, Some("true"))
    );
    // Left out, null, or unreadable: `None`, and the rest of the object is still read.
    for body in [
        "{}",
        r#"{"id": null, "text": null, "time": null, "flag": null, "count": null}"#,
        r#"{"id": {}, "text": [1], "time": "yesterday", "flag": "maybe", "count": -1}"#,
    ] {
        let none = read(body);
        assert_eq!(
            (none.id.as_deref(), none.text.as_deref()),
            (None, None),
            "{body}"
        );
        assert_eq!(
            (*none.time, *none.flag, *none.count),
            (None, None, None),
            "{body}"
        );
    }
    // Read from JSON already parsed (a raw item kept for `include=raw`), alike.
    let value = serde_json::json!({"id": 8, "flag": true});
    let parsed = Fields::deserialize(&value).expect("fields");
    assert_eq!(
        (parsed.id.as_deref(), *parsed.flag),
        (Some("8"), Some(true))
    );
}

#[derive(Debug, PartialEq, Deserialize)]
struct Assigned {
    #[serde(default, deserialize_with = "opt_object")]
    object: Option<Person>,
    #[serde(default, deserialize_with = "opt_object_or_id")]
    object_or_id: Option<Person>,
}

#[test]
fn an_object_is_read_and_an_id_stands_for_one_where_allowed() {
    let person = |id: &str, name: Option<&str>| {
        Some(Person {
            id: Some(id.to_owned()).into(),
            name: name.map(str::to_owned).into(),
        })
    };
    let read = |value: &str| {
        let body = format!(r#"{{"object": {value}, "object_or_id": {value}}}"#);
        let read = from_slice::<Assigned>(body.as_bytes()).expect(value);
        (read.object, read.object_or_id)
    };
    let object = r#"{"id": 7, "name": "Sam", "extra": [1]}"#;
    assert_eq!(
        read(object),
        (person("7", Some("Sam")), person("7", Some("Sam")))
    );
    assert_eq!(read("7"), (None, person("7", None)));
    assert_eq!(read(r#""u_7""#), (None, person("u_7", None)));
    for nothing in ["null", r#""""#, "[1, {}]", "true", "7.5"] {
        assert_eq!(read(nothing), (None, None), "{nothing}");
    }
}
