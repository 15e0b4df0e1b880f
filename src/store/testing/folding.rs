//! Case folding: every store compares, sorts and keys case-insensitive text by the same
//! Unicode full case folding ([`crate::filter::fold_case`]).

#[allow(unused_imports)]
use super::*;

/// Users whose text needs more than lower-casing: `(id, userName, displayName, email)`.
const FOLD_USERS: &[(&str, &str, &str, &str)] = &[
    (
        "ascii",
        "BJensen@x.test",
        "Barbara Jensen",
        "bjensen@example.test",
    ),
    // final sigma: lower-cased, "Οδυσσευς" ends in ς, the filter value "ΕΥΣ" in σ
    ("sigma", "ΟΔΟΣ@x.test", "Οδυσσευς", "odos@example.test"),
    (
        "strasse",
        "straße@x.test",
        "Hauptstraße",
        "STRASSE@EXAMPLE.TEST",
    ),
    // the Kelvin sign, U+212A
    (
        "kelvin",
        "\u{212A}elvin@x.test",
        "KELVIN",
        "kelvin@example.test",
    ),
    // ligatures ﬁ (U+FB01) and ﬀ (U+FB00)
    (
        "ligature",
        "\u{FB01}ona@x.test",
        "E\u{FB00}ie",
        "fiona@example.test",
    ),
    // dotted capital I, U+0130
    (
        "istanbul",
        "İstanbul@x.test",
        "İSTANBUL",
        "istanbul@example.test",
    ),
    // dotless small i, U+0131
    (
        "dotless",
        "ısparta@x.test",
        "ısparta",
        "isparta@example.test",
    ),
    ("moscow", "МОСКВА@x.test", "Москва", "moskva@example.test"),
    // Armenian, with the ligature և (U+0587, folds to եւ)
    ("yerevan", "ԵՐԵՎԱՆ@x.test", "Երևան", "yerevan@example.test"),
];

/// Filters, sorting and uniqueness over text that needs full case folding (final sigma,
/// `ß`/`ẞ`, the Kelvin sign, ligatures, dotted and dotless I, Greek, Cyrillic, Armenian) give
/// the same answers in every store: the evaluator's.
pub async fn check_case_folding(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    let t = |s: i64| base_time() + Duration::seconds(s);
    for (i, (id, user_name, display_name, email)) in FOLD_USERS.iter().enumerate() {
        let doc = json!({
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "displayName": display_name,
            "emails": [{"value": email, "type": "work"}],
        });
        store
            .create(tn, &fx.users, user_request(id, doc, t(i as i64)))
            .await
            .unwrap();
    }
    let cases: &[(&str, &[&str])] = &[
        // final sigma
        (r#"userName eq "οδος@X.TEST""#, &["sigma"]),
        (r#"userName eq "ΟΔΟς@x.test""#, &["sigma"]),
        (r#"displayName eq "ΟΔΥΣΣΕΥΣ""#, &["sigma"]),
        (r#"displayName ew "ΕΥΣ""#, &["sigma"]),
        (r#"displayName ew "ευς""#, &["sigma"]),
        (r#"displayName co "ΣΣΕΥΣ""#, &["sigma"]),
        // ß and ẞ are ss
        (r#"userName eq "STRASSE@X.TEST""#, &["strasse"]),
        (r#"userName eq "STRAẞE@x.test""#, &["strasse"]),
        (r#"userName sw "strass""#, &["strasse"]),
        (r#"displayName ew "STRASSE""#, &["strasse"]),
        (r#"displayName co "ẞ""#, &["strasse"]),
        (r#"emails.value eq "straße@example.test""#, &["strasse"]),
        (r#"emails[value co "ßE@"]"#, &["strasse"]),
        // the Kelvin sign is k
        (r#"userName eq "kelvin@x.test""#, &["kelvin"]),
        (r#"userName sw "K""#, &["kelvin"]),
        ("displayName eq \"\u{212A}elvin\"", &["kelvin"]),
        // ligatures
        (r#"userName sw "FI""#, &["ligature"]),
        (r#"userName eq "fiona@x.test""#, &["ligature"]),
        (r#"displayName eq "EFFIE""#, &["ligature"]),
        ("displayName co \"\u{FB00}\"", &["ligature"]),
        // dotted capital I folds to i + U+0307 (default, non-Turkic folding)
        ("displayName eq \"i\u{307}stanbul\"", &["istanbul"]),
        (r#"userName sw "İ""#, &["istanbul"]),
        (r#"displayName eq "istanbul""#, &[]),
        // dotless i is its own letter
        (r#"displayName eq "ISPARTA""#, &[]),
        (r#"displayName eq "ıSPARTA""#, &["dotless"]),
        // Greek, Cyrillic, Armenian
        (r#"userName eq "москва@x.test""#, &["moscow"]),
        (r#"displayName sw "МОС""#, &["moscow"]),
        (r#"displayName eq "ԵՐԵՒԱՆ""#, &["yerevan"]),
        (r#"userName sw "երեվ""#, &["yerevan"]),
        // ASCII
        (r#"userName eq "bjensen@X.TEST""#, &["ascii"]),
        (
            r#"emails.value ew "@EXAMPLE.test" and displayName sw "barb""#,
            &["ascii"],
        ),
        // not, over folded text
        (
            r#"not (userName sw "s") and not (userName sw "b")"#,
            &[
                "sigma", "kelvin", "ligature", "istanbul", "dotless", "moscow", "yerevan",
            ],
        ),
    ];
    for (text, want) in cases {
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

    // Sorting orders folded text by code point: "ﬁona" sorts as "fiona", "\u{212A}elvin" as
    // "kelvin", "İstanbul" as "i\u{307}stanbul" (after "i", before "k").
    let by_user_name = [
        "ascii", "ligature", "istanbul", "kelvin", "strasse", "dotless", "sigma", "moscow",
        "yerevan",
    ];
    for order in [SortOrder::Ascending, SortOrder::Descending] {
        let q = ListQuery {
            sort: Some(SortSpec {
                by: AttrPath::new("userName"),
                order,
            }),
            ..ListQuery::default()
        };
        let page = list_exact(store, tn, &fx.users, &q).await;
        let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        let mut want = by_user_name.to_vec();
        if order == SortOrder::Descending {
            want.reverse();
        }
        assert_eq!(got, want, "sortBy=userName {order:?}");
        // a page of it is a slice of the whole
        let q = ListQuery {
            start_index: 3,
            count: 2,
            ..q
        };
        let page = list_exact(store, tn, &fx.users, &q).await;
        let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            got,
            want[2..4],
            "sortBy=userName {order:?}, startIndex=3, count=2"
        );
    }
    let q = ListQuery {
        sort: Some(SortSpec {
            by: AttrPath::new("displayName"),
            order: SortOrder::Ascending,
        }),
        ..ListQuery::default()
    };
    let page = list_exact(store, tn, &fx.users, &q).await;
    let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
    // barbara jensen, effie, hauptstrasse, i̇stanbul, kelvin, ısparta, οδυσσευσ, москва, երեւան
    assert_eq!(
        got,
        [
            "ascii", "ligature", "strasse", "istanbul", "kelvin", "dotless", "sigma", "moscow",
            "yerevan"
        ],
        "sortBy=displayName"
    );

    // Uniqueness keys are folded the same way: these userNames are taken.
    for (i, taken) in [
        "STRASSE@X.TEST",
        "strasse@x.test",
        "STRAẞE@x.test",
        "ΟΔΟς@x.test",
        "οδοσ@x.test",
        "KELVIN@x.test",
        "FIONA@x.test",
        "İSTANBUL@x.test",
        "I\u{307}stanbul@x.test",
        "ԵՐԵՎԱՆ@X.TEST",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("dup{i}");
        let dup = store
            .create(tn, &fx.users, user_request(&id, simple_user(taken), t(20)))
            .await;
        assert!(
            matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "userName"),
            "`{taken}` must clash: {dup:?}"
        );
        assert!(
            matches!(
                store.get(tn, &fx.users, &id.as_str().into(), false).await,
                Err(StoreError::NotFound { .. })
            ),
            "a refused `{taken}` left nothing"
        );
    }
    // ... and these are different users: plain i is not İ, dotless ı is not I.
    for (i, free) in ["istanbul@x.test", "ISPARTA@x.test"]
        .into_iter()
        .enumerate()
    {
        let id = format!("free{i}");
        store
            .create(tn, &fx.users, user_request(&id, simple_user(free), t(30)))
            .await
            .unwrap_or_else(|e| panic!("`{free}` is free: {e:?}"));
    }
    // Renaming to a taken folded name clashes too.
    let taken = store
        .update(
            tn,
            &fx.users,
            &"free0".into(),
            replace_request(simple_user("ΜΟΣΚΒΑ@x.test"), None, t(40)),
        )
        .await;
    assert!(
        taken.is_ok(),
        "Greek ΜΟΣΚΒΑ is not Cyrillic МОСКВА: {taken:?}"
    );
    let taken = store
        .update(
            tn,
            &fx.users,
            &"free0".into(),
            replace_request(simple_user("москва@X.TEST"), None, t(41)),
        )
        .await;
    assert!(
        matches!(&taken, Err(StoreError::Conflict { attribute }) if attribute == "userName"),
        "rename to a folded duplicate: {taken:?}"
    );
}
