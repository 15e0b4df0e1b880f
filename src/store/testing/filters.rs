//! The filter equivalence corpus: every filter answered by the store exactly as the
//! engine's evaluator answers it over the same data.

#[allow(unused_imports)]
use super::*;

/// Creates users `u00000`.. from [`generated_user`], one second apart from [`base_time`].
pub async fn load_users(store: &dyn ResourceStore, fx: &Fixture, tenant: &TenantId, n: usize) {
    for i in 0..n {
        let now = base_time() + Duration::seconds(i as i64);
        store
            .create(
                tenant,
                &fx.users,
                user_request(&format!("u{i:05}"), generated_user(i), now),
            )
            .await
            .expect("load user");
    }
}

pub(crate) const GIVEN: [&str; 12] = [
    "Barbara", "James", "Émile", "Zoë", "ann", "Olga", "Li", "Mary", "Jean-Luc", "Ørjan", "Tom",
    "Bjørn",
];

pub(crate) const FAMILY: [&str; 10] = [
    "Jensen", "Smith", "Müller", "O'Brien", "van Dijk", "Ng", "Garcia", "jones", "Stråle", "Doe",
];

pub(crate) const TITLES: [&str; 4] = ["Engineer", "Tour Guide", "VP Sales", "engineer"];

pub(crate) const DEPARTMENTS: [&str; 5] = ["Sales", "Engineering", "Support", "HR", "sales"];

/// User `i` of the generated population (deterministic). Attributes vary in presence, case
/// and type so that every operator is exercised.
pub fn generated_user(i: usize) -> Value {
    let given = GIVEN[i % GIVEN.len()];
    let family = FAMILY[(i / 3) % FAMILY.len()];
    let domain = if i.is_multiple_of(4) {
        "example.org"
    } else {
        "example.com"
    };
    let user_name = if i.is_multiple_of(7) {
        format!("USER{i}@{domain}")
    } else {
        format!("user{i}@{domain}")
    };
    let mut doc = json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "displayName": format!("{given} {family}"),
        "active": !i.is_multiple_of(5),
        "emails": [
            {"value": format!("{}.{}{}@{domain}", given.to_lowercase(), family.to_lowercase(), i), "type": "work", "primary": i.is_multiple_of(2)},
        ],
        "locale": if i.is_multiple_of(3) { "en-US" } else { "de-DE" },
    });
    if i % 2 == 1 {
        doc["emails"]
            .as_array_mut()
            .unwrap()
            .push(json!({"value": format!("home{i}@mail.test"), "type": "home", "primary": true}));
    }
    if i % 3 != 2 {
        doc["externalId"] = json!(format!("ext-{i}"));
    }
    if i % 4 != 3 {
        doc["title"] = json!(TITLES[i % TITLES.len()]);
    }
    if i % 6 == 1 {
        doc["nickName"] = json!("");
    }
    if i % 10 < 7 {
        doc["phoneNumbers"] = json!([{"value": format!("+1-555-{:04}", i), "type": if i.is_multiple_of(2) {"work"} else {"mobile"}}]);
    }
    if i % 5 != 4 {
        doc["schemas"]
            .as_array_mut()
            .unwrap()
            .push(json!(ENTERPRISE_USER_SCHEMA));
        doc[ENTERPRISE_USER_SCHEMA] = json!({
            "employeeNumber": format!("{:04}", (i * 37) % 1000),
            "department": DEPARTMENTS[i % DEPARTMENTS.len()],
            "manager": {"value": format!("u{:05}", i / 10)},
        });
    }
    doc
}

/// The User filters of the equivalence corpus (over [`generated_user`]s `u00000`...),
/// with `{id:N}` standing for the id of user N.
pub fn user_filters() -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    for i in (0..500).step_by(23) {
        f.push(format!(r#"userName eq "user{i}@example.com""#));
        f.push(format!(r#"userName eq "USER{i}@EXAMPLE.COM""#));
        f.push(format!(r#"externalId eq "ext-{i}""#));
        f.push(format!(r#"id eq "u{i:05}""#));
    }
    f.push(r#"externalId eq "EXT-1""#.into()); // caseExact: no match
    f.push(r#"id eq "U00001""#.into()); // caseExact: no match
    f.push(r#"userName eq "nobody@example.com""#.into());
    for p in ["user1", "USER2", "user49", "user4", "u", "x", "user10@", ""] {
        f.push(format!(r#"userName sw "{p}""#));
    }
    for p in ["@example.org", "0@example.com", "7@EXAMPLE.COM"] {
        f.push(format!(r#"userName ew "{p}""#));
    }
    for p in ["12", "99@", "ORG"] {
        f.push(format!(r#"userName co "{p}""#));
    }
    for (a, b) in [(3, 250), (7, 49), (100, 101), (0, 499)] {
        f.push(format!(
            r#"userName eq "user{a}@example.com" or userName eq "user{b}@example.com""#
        ));
        f.push(format!(
            r#"userName eq "user{a}@example.com" and externalId eq "ext-{a}""#
        ));
        f.push(format!(
            r#"externalId eq "ext-{a}" or (userName sw "user{b}" and active eq true)"#
        ));
    }
    for g in GIVEN {
        f.push(format!(r#"name.givenName eq "{g}""#));
        f.push(format!(r#"name.givenName eq "{}""#, g.to_uppercase()));
    }
    for fam in FAMILY {
        f.push(format!(
            r#"name.familyName sw "{}""#,
            fam.get(..2).unwrap_or(fam)
        ));
    }
    for t in ["engineer", "Tour", "sales", "VP"] {
        f.push(format!(r#"title eq "{t}""#));
        f.push(format!(r#"title co "{t}""#));
        f.push(format!(r#"title ne "{t}""#));
    }
    f.extend(
        [
            "title pr",
            "not (title pr)",
            "title eq null",
            "title ne null",
            "nickName pr",
            "externalId pr",
            "active eq true",
            "active eq false",
            "active ne true",
            "not (active eq true)",
            r#"active eq "true""#,
            "emails pr",
            "phoneNumbers pr",
            r#"emails[type eq "home"]"#,
            r#"emails[type eq "work" and primary eq true]"#,
            r#"emails[type eq "work" and value ew "example.org"]"#,
            r#"emails[type eq "home" and value co "1"]"#,
            r#"emails.value co "smith""#,
            r#"emails.value ew "@mail.test""#,
            r#"emails.type eq "home""#,
            r#"emails eq "home1@mail.test""#,
            r#"emails[value sw "barbara"] or emails[value sw "zo"]"#,
            r#"phoneNumbers[type eq "mobile"]"#,
            r#"phoneNumbers.value sw "+1-555-01""#,
            r#"locale eq "en-us""#,
            r#"locale ne "de-DE" and active eq false"#,
            r#"userName gt "user4""#,
            r#"userName ge "user48@example.com""#,
            r#"userName lt "user1""#,
            r#"userName le "USER105@example.com""#,
            r#"name.familyName gt "M""#,
            r#"name.familyName lt "d""#,
            r#"title gt "T""#,
            r#"meta.created gt "2026-01-01T00:05:00Z""#,
            r#"meta.created ge "2026-01-01T00:05:00Z""#,
            r#"meta.created lt "2026-01-01T00:00:10Z""#,
            r#"meta.lastModified le "2026-01-01T00:00:03Z""#,
            r#"meta.resourceType eq "User""#,
            r#"meta.version eq "W/\"1\"""#,
            r#"id sw "u001""#,
            r#"id gt "u00490""#,
            r#"id ne "u00003""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering" and active eq true"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "0900""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u00003""#,
            r#"not (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr)"#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "user3""#,
            r#"name.formatted co "ø""#,
            r#"name.givenName eq "ÉMILE""#,
            r#"name.givenName eq "zoë""#,
            r#"displayName co "jensen""#,
            r#"not (userName sw "user1") and not (userName sw "user2") and title eq "engineer""#,
            r#"(title eq "Engineer" or title eq "VP Sales") and (active eq false or locale eq "en-US")"#,
            r#"userName sw "user1" and (externalId eq "ext-10" or externalId eq "ext-100" or externalId eq "ext-101")"#,
            r#"userName eq "user5@example.com" or userName eq "user6@example.com" or userName eq "user8@example.com""#,
            r#"userName eq "user5@example.com" and userName eq "user6@example.com""#,
            r#"externalId eq "ext-4" or title pr"#,
            r#"not (not (active eq true))"#,
            r#"groups pr"#,
            r#"unknownAttribute eq "x""#,
            r#"unknownAttribute ne "x""#,
            // RFC 7644 §3.4.2.2: `ne` on multi-valued attributes is "some value differs".
            r#"emails.type ne "work""#,
            r#"emails.type ne "home""#,
            r#"not (emails.type eq "work")"#,
            r#"emails[type ne "work"]"#,
            r#"emails.value ne "home1@mail.test""#,
            r#"phoneNumbers.type ne "mobile""#,
            r#"nickName ne "x""#,
            r#"externalId ne "ext-1""#,
            r#"userName ne "user1@example.com""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department ne "sales""#,
            r#"meta.created ne "2026-01-01T00:00:05Z""#,
        ]
        .map(String::from),
    );
    f
}

/// The Group filters of the equivalence corpus, naming members among `user_ids`.
pub fn group_filters(user_ids: &[String]) -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    for i in (0..50).step_by(4) {
        f.push(format!(r#"displayName eq "Group {i}""#));
        f.push(format!(r#"displayName eq "GROUP {i}""#));
    }
    for id in user_ids.iter().step_by(45) {
        f.push(format!(r#"members.value eq "{id}""#));
        f.push(format!(r#"members[value eq "{id}"]"#));
        f.push(format!(r#"members[value eq "{}"]"#, id.to_uppercase()));
    }
    f.extend(
        [
            r#"displayName sw "group 1""#,
            r#"displayName co "2""#,
            r#"displayName eq "Group 3" or displayName eq "Group 30""#,
            r#"displayName eq "Group 3" and members pr"#,
            "members pr",
            "not (members pr)",
            r#"members.type eq "Group""#,
            r#"members[type eq "User" and value eq "u00001"]"#,
            r#"externalId pr"#,
            r#"externalId eq "gext-7""#,
            r#"members.display sw "user1""#,
            r#"meta.lastModified gt "2026-01-01T01:00:00Z""#,
            r#"members.value ne "u00007""#,
            r#"not (members.value eq "u00007")"#,
        ]
        .map(String::from),
    );
    f
}

/// The filter equivalence corpus: over 500 generated users and 50 groups, each of more than
/// 200 filters returns exactly what the engine's evaluator returns (the same set; under a
/// `sortBy`, the engine's order; pages are slices of it).
pub async fn check_filter_equivalence(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    load_users(store, fx, tn, 500).await;
    let user_ids: Vec<String> = (0..500).map(|i| format!("u{i:05}")).collect();
    for g in 0..50usize {
        let members: Vec<&str> = user_ids
            .iter()
            .enumerate()
            .filter(|(i, _)| g > 0 && (i % 50 == g || i % (g + 7) == 0))
            .map(|(_, id)| id.as_str())
            .collect();
        let mut req = group_request(
            &format!("g{g:03}"),
            &format!("Group {g}"),
            &members,
            base_time() + Duration::minutes(g as i64),
        );
        if g % 3 == 0 {
            req.doc["externalId"] = json!(format!("gext-{g}"));
        }
        store.create(tn, &fx.groups, req).await.unwrap();
    }
    // Nested: group 1 contains group 2.
    store
        .update(
            tn,
            &fx.groups,
            &"g001".into(),
            delta_request(add(&["g002"]), base_time() + Duration::hours(2)),
        )
        .await
        .unwrap();

    let mut checked = 0usize;
    for (rt, filters) in [
        (&fx.users, user_filters()),
        (&fx.groups, group_filters(&user_ids)),
    ] {
        // Everything, with members, as the evaluator's input.
        let everything = list_exact(
            store,
            tn,
            rt,
            &ListQuery {
                include_members: true,
                ..ListQuery::default()
            },
        )
        .await;
        let want_total = if rt.name() == "User" { 500 } else { 50 };
        assert_eq!(everything.total_results, want_total);
        let views: Vec<(String, Value)> = everything
            .resources
            .iter()
            .map(|r| (r.id.to_string(), view_document(r)))
            .collect();
        let sorts: Vec<SortSpec> = if rt.name() == "User" {
            [
                "userName",
                "name.familyName",
                "title",
                "meta.created",
                "externalId",
                "userName",
            ]
        } else {
            [
                "displayName",
                "externalId",
                "meta.created",
                "id",
                "displayName",
                "displayName",
            ]
        }
        .iter()
        .enumerate()
        .map(|(i, by)| SortSpec {
            by: AttrPath::parse(by).unwrap(),
            order: if i % 2 == 0 {
                SortOrder::Ascending
            } else {
                SortOrder::Descending
            },
        })
        .collect();
        for (n, text) in filters.iter().enumerate() {
            let filter = Filter::parse(text).unwrap_or_else(|e| panic!("corpus `{text}`: {e}"));
            let compiled = filter.compile(rt, false).unwrap();
            let expected: BTreeSet<&str> = views
                .iter()
                .filter(|(_, v)| compiled.matches(v))
                .map(|(id, _)| id.as_str())
                .collect();
            let q = ListQuery {
                filter: Some(filter.clone()),
                ..ListQuery::default()
            };
            let page = list_exact(store, tn, rt, &q).await;
            let got: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(
                got,
                expected,
                "{} filter `{text}`: store and evaluator disagree",
                rt.name()
            );
            assert_eq!(page.total_results, expected.len(), "`{text}` totalResults");
            assert_eq!(page.resources.len(), expected.len(), "`{text}` duplicates");

            // Sorted, whole and paged.
            let spec = &sorts[n % sorts.len()];
            let sq = ListQuery {
                filter: Some(filter.clone()),
                sort: Some(spec.clone()),
                ..ListQuery::default()
            };
            let sorted = list_exact(store, tn, rt, &sq).await;
            let got: BTreeSet<&str> = sorted.resources.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(got, expected, "`{text}` sorted by {:?}", spec.by);
            assert_sorted(rt, spec, &sorted.resources, text);
            let total_order = ["userName", "meta.created", "id"]
                .iter()
                .any(|a| spec.by.name.eq_ignore_ascii_case(a));
            if total_order {
                let paged = list_exact(
                    store,
                    tn,
                    rt,
                    &ListQuery {
                        start_index: 3,
                        count: 4,
                        ..sq.clone()
                    },
                )
                .await;
                let all_ids = ids(&sorted.resources);
                let want: Vec<String> = all_ids.iter().skip(2).take(4).cloned().collect();
                assert_eq!(
                    ids(&paged.resources),
                    want,
                    "`{text}` page 3..7 by {:?}",
                    spec.by
                );
                assert_eq!(paged.total_results, expected.len());
            }
            checked += 1;
        }
    }
    assert!(checked >= 200, "the corpus has only {checked} filters");
}

/// RFC 7644 §3.4.2.2: a comparison on a multi-valued attribute matches when **any** value
/// satisfies it, `ne` included (`emails.type ne "work"` matches a user with a work and a
/// home email); an attribute without a value has no value that differs, so `ne` does not
/// match it; `not (... eq ...)` keeps its logical meaning. Checked against answers written
/// by hand, not against the evaluator, on single-valued, multi-valued, column-backed and
/// extension attributes, and on group members.
pub async fn check_filter_ne_any_value(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    let t = |s: i64| base_time() + Duration::seconds(s);
    let users = [
        (
            "both",
            json!({"schemas": [USER_SCHEMA], "userName": "both", "externalId": "e1", "title": "Boss", "active": true,
                   "emails": [{"value": "w@x.test", "type": "work"}, {"value": "h@x.test", "type": "home"}]}),
        ),
        (
            "work",
            json!({"schemas": [USER_SCHEMA], "userName": "work", "externalId": "e2", "title": "Clerk", "active": false,
                   "emails": [{"value": "w2@x.test", "type": "work"}]}),
        ),
        (
            "home",
            json!({"schemas": [USER_SCHEMA], "userName": "home",
                   "emails": [{"value": "h3@x.test", "type": "home"}]}),
        ),
        (
            "none",
            json!({"schemas": [USER_SCHEMA], "userName": "none"}),
        ),
        (
            "untyped",
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "untyped",
                   "emails": [{"value": "u@x.test"}],
                   ENTERPRISE_USER_SCHEMA: {"department": "Sales"}}),
        ),
    ];
    for (i, (id, doc)) in users.iter().enumerate() {
        store
            .create(tn, &fx.users, user_request(id, doc.clone(), t(i as i64)))
            .await
            .unwrap();
    }
    let dept = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
    let cases: Vec<(String, &[&str])> = vec![
        (r#"emails.type ne "work""#.into(), &["both", "home"]),
        (r#"emails.type ne "WORK""#.into(), &["both", "home"]),
        (r#"emails.type eq "work""#.into(), &["both", "work"]),
        (
            r#"not (emails.type eq "work")"#.into(),
            &["home", "none", "untyped"],
        ),
        (r#"emails.type ne "home""#.into(), &["both", "work"]),
        (r#"emails[type ne "work"]"#.into(), &["both", "home"]),
        (
            r#"emails[not (type eq "work")]"#.into(),
            &["both", "home", "untyped"],
        ),
        (
            r#"emails.value ne "w@x.test""#.into(),
            &["both", "work", "home", "untyped"],
        ),
        (
            r#"emails ne "w2@x.test""#.into(),
            &["both", "home", "untyped"],
        ),
        (r#"title ne "Boss""#.into(), &["work"]),
        (
            r#"not (title eq "Boss")"#.into(),
            &["work", "home", "none", "untyped"],
        ),
        (r#"externalId ne "e1""#.into(), &["work"]),
        (r#"active ne true"#.into(), &["work"]),
        (
            r#"userName ne "BOTH""#.into(),
            &["work", "home", "none", "untyped"],
        ),
        (
            r#"id ne "both""#.into(),
            &["work", "home", "none", "untyped"],
        ),
        (
            r#"meta.created ne "2026-01-01T00:00:00Z""#.into(),
            &["work", "home", "none", "untyped"],
        ),
        (format!(r#"{dept} ne "sales""#), &[]),
        (format!(r#"{dept} ne "HR""#), &["untyped"]),
        (
            format!(r#"not ({dept} eq "HR")"#),
            &["both", "work", "home", "none", "untyped"],
        ),
        (r#"nickName ne "x""#.into(), &[]),
        (r#"title ne null"#.into(), &["both", "work"]),
    ];
    for (text, want) in &cases {
        let q = ListQuery {
            filter: Some(Filter::parse(text).unwrap()),
            ..ListQuery::default()
        };
        let page = list_exact(store, tn, &fx.users, &q).await;
        let got: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(got, want, "`{text}`");
        assert_eq!(page.total_results, want.len(), "`{text}` totalResults");
    }

    // Members: a group with two members has a member that is not `both`; one whose only
    // member is `both` has none; an empty group has no member at all.
    for (id, members) in [
        ("g-two", &["both", "work"][..]),
        ("g-one", &["both"][..]),
        ("g-empty", &[][..]),
    ] {
        store
            .create(tn, &fx.groups, group_request(id, id, members, t(10)))
            .await
            .unwrap();
    }
    for (text, want) in [
        (r#"members.value ne "both""#, &["g-two"][..]),
        (r#"members[value ne "both"]"#, &["g-two"][..]),
        (r#"not (members.value eq "both")"#, &["g-empty"][..]),
    ] {
        let q = ListQuery {
            filter: Some(Filter::parse(text).unwrap()),
            include_members: true,
            ..ListQuery::default()
        };
        let page = list_exact(store, tn, &fx.groups, &q).await;
        let got: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(got, want.iter().copied().collect(), "`{text}`");
    }
}

/// What the SQL equivalence property test (`tests/sql_equivalence.rs`) found, minimised, with
/// answers written by hand: each store answers each filter exactly so.
///
/// - `sw`/`ew` on an empty string (SQLite: `substr` of an empty blob is `NULL`, so
///   `not (displayName sw "x")` was `NULL`, false, for `displayName: ""`).
/// - `ne` on a dateTime attribute holding text that is not a dateTime (SQLite: the value
///   was read as absent).
/// - A superset or a constant next to bound values (PostgreSQL: the discarded SQL left its
///   parameters behind and the server refused the statement).
pub async fn check_filter_regressions(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    let t = base_time();
    let users = [
        (
            "empty",
            json!({"schemas": [USER_SCHEMA], "userName": "a", "displayName": "", "title": "", "nickName": ""}),
        ),
        (
            "full",
            json!({"schemas": [USER_SCHEMA], "userName": "ΣΊΣΥΦΟΣ", "displayName": "Straße", "title": "x"}),
        ),
    ];
    for (id, doc) in users {
        store
            .create(tn, &fx.users, user_request(id, doc, t))
            .await
            .unwrap();
    }
    let devices = [
        (
            "d-empty",
            json!({"schemas": [DEVICE_SCHEMA], "serialNumber": "a", "displayName": ""}),
        ),
        (
            "d-date",
            json!({"schemas": [DEVICE_SCHEMA], "serialNumber": "", "lastSeen": "2026-01-01T01:00:00+01:00", "ports": 2}),
        ),
        (
            "d-soon",
            json!({"schemas": [DEVICE_SCHEMA], "serialNumber": "s", "lastSeen": "soon"}),
        ),
    ];
    for (id, doc) in devices {
        // No `userName`, so no uniqueness key.
        store
            .create(tn, &fx.devices, user_request(id, doc, t))
            .await
            .unwrap();
    }
    let cases: [(&Arc<ResourceDef>, &str, &[&str]); 16] = [
        (
            &fx.users,
            r#"not (displayName sw "σίσυφος")"#,
            &["empty", "full"],
        ),
        (&fx.users, r#"not (displayName ew "SSE")"#, &["empty"]),
        (&fx.users, r#"displayName ew "SSE""#, &["full"]),
        (&fx.users, r#"not (title sw "x")"#, &["empty"]),
        (&fx.users, r#"not (nickName ew "x")"#, &["empty", "full"]),
        (&fx.users, r#"userName sw "σίσυφοσ""#, &["full"]),
        (
            &fx.users,
            r#"userName eq "a" or meta.version ne "x""#,
            &["empty", "full"],
        ),
        (
            &fx.users,
            r#"not (userName eq "a" and meta.version ne "x")"#,
            &["full"],
        ),
        (
            &fx.devices,
            r#"not (displayName sw "σίσυφος")"#,
            &["d-empty", "d-date", "d-soon"],
        ),
        (
            &fx.devices,
            r#"(serialNumber eq "") or (lastSeen eq "2026-01-01T00:00:00Z")"#,
            &["d-date"],
        ),
        (
            &fx.devices,
            r#"serialNumber eq "a" or ports eq 9007199254740993"#,
            &["d-empty"],
        ),
        (
            &fx.devices,
            r#"not (serialNumber eq "x" and lastSeen gt "2025-01-01T00:00:00Z")"#,
            &["d-empty", "d-date", "d-soon"],
        ),
        // A value that does not read as a dateTime is there and differs from any instant
        // (SQLite read its absence from the dateTime copy of the document).
        (
            &fx.devices,
            r#"lastSeen ne "2026-01-01T00:00:00Z""#,
            &["d-soon"],
        ),
        (
            &fx.devices,
            r#"lastSeen ne "2026-01-01T00:00:01Z" or serialNumber co "B""#,
            &["d-date", "d-soon"],
        ),
        (
            &fx.devices,
            r#"lastSeen eq "2026-01-01T00:00:00Z""#,
            &["d-date"],
        ),
        (
            &fx.devices,
            r#"serialNumber eq "" and not (lastSeen lt "2026-01-01T00:00:00Z")"#,
            &["d-date"],
        ),
    ];
    // Sorted by a column-backed attribute: `""` and a missing value both have no value,
    // so they tie and keep creation order in both directions (SQLite ordered `""` before
    // `NULL` in descending order).
    let no_value = [
        (
            "n-absent",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "n"}),
        ),
        (
            "n-empty",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "n", "externalId": ""}),
        ),
        (
            "n-null",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "n", "externalId": null}),
        ),
        (
            "n-value",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "n", "externalId": "x"}),
        ),
    ];
    for (i, (id, doc)) in no_value.into_iter().enumerate() {
        store
            .create(
                tn,
                &fx.groups,
                user_request(id, doc, t + Duration::seconds(i as i64)),
            )
            .await
            .unwrap();
    }
    for order in [SortOrder::Ascending, SortOrder::Descending] {
        let q = ListQuery {
            filter: Some(Filter::parse(r#"displayName eq "n""#).unwrap()),
            sort: Some(SortSpec {
                by: AttrPath::new("externalId"),
                order,
            }),
            ..ListQuery::default()
        };
        let page = list_exact(store, tn, &fx.groups, &q).await;
        assert_eq!(
            ids(&page.resources),
            ["n-value", "n-absent", "n-empty", "n-null"],
            "sorted by externalId {order:?}"
        );
    }
    for (rt, text, want) in cases {
        let q = ListQuery {
            filter: Some(Filter::parse(text).unwrap()),
            ..ListQuery::default()
        };
        let page = list_exact(store, tn, rt, &q).await;
        let got: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(got, want, "{} `{text}`", rt.name());
        assert_eq!(page.total_results, want.len(), "`{text}` totalResults");
    }
}
