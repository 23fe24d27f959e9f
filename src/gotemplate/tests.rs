use super::*;

fn change(old: &str, new: &str, setter: &str) -> Value {
    Value::Struct(Struct {
        type_name: "update.Change",
        fields: vec![
            ("OldValue", Value::str(old)),
            ("NewValue", Value::str(new)),
            ("Setter", Value::str(setter)),
        ],
        display: None,
    })
}

fn object(kind: &str, name: &str) -> Value {
    Value::Struct(Struct {
        type_name: "update.ObjectIdentifier",
        fields: vec![
            ("APIVersion", Value::str("apps/v1")),
            ("Kind", Value::str(kind)),
            ("Name", Value::str(name)),
            ("Namespace", Value::str("default")),
        ],
        display: None,
    })
}

fn data() -> Value {
    let a = change("x:1", "x:2", "flux-system:x");
    let b = change("1", "2", "flux-system:y:tag");
    let objects = Value::Map(Map::new(
        "update.ObjectChanges",
        vec![
            (object("Deployment", "web"), Value::List(vec![b.clone()])),
            (object("Deployment", "api"), Value::List(vec![a.clone()])),
        ],
        Value::List(Vec::new()),
    ));
    Value::Struct(Struct {
        type_name: "TemplateData",
        fields: vec![
            (
                "AutomationObject",
                Value::Struct(Struct {
                    type_name: "types.NamespacedName",
                    fields: vec![
                        ("Namespace", Value::str("flux-system")),
                        ("Name", Value::str("auto")),
                    ],
                    display: Some("flux-system/auto".into()),
                }),
            ),
            (
                "Changed",
                Value::Struct(Struct {
                    type_name: "update.ResultV2",
                    fields: vec![
                        (
                            "FileChanges",
                            Value::Map(Map::new(
                                "map[string]update.ObjectChanges",
                                vec![
                                    (Value::str("b.yaml"), objects.clone()),
                                    (Value::str("a.yaml"), objects.clone()),
                                ],
                                Value::List(Vec::new()),
                            )),
                        ),
                        ("Changes", Value::List(vec![a, b])),
                        ("Objects", objects),
                    ],
                    display: None,
                }),
            ),
            (
                "Values",
                Value::Map(Map::new(
                    "map[string]string",
                    vec![(Value::str("cluster"), Value::str("prod"))],
                    Value::str(""),
                )),
            ),
        ],
        display: None,
    })
}

fn render(source: &str) -> String {
    Template::parse(source)
        .unwrap_or_else(|e| panic!("{source:?}: {e}"))
        .render(&data())
        .unwrap_or_else(|e| panic!("{source:?}: {e}"))
}

fn parse_error(source: &str) -> String {
    Template::parse(source).unwrap_err().to_string()
}

fn render_error(source: &str) -> String {
    Template::parse(source)
        .unwrap_or_else(|e| panic!("{source:?}: {e}"))
        .render(&data())
        .unwrap_err()
        .to_string()
}

#[test]
fn the_image_update_guide_template_renders_as_go_does() {
    // `flux create image update` in Flux's image automation guide.
    assert_eq!(
        render("{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}"),
        "x:1 -> x:2\n1 -> 2\n"
    );
}

#[test]
fn the_documented_objects_template_renders_in_go_map_order() {
    let source = "Automated image update\n\nAutomation name: {{ .AutomationObject }}\n\nFiles:\n{{ range $filename, $_ := .Changed.FileChanges -}}\n- {{ $filename }}\n{{ end -}}\n\nObjects:\n{{ range $resource, $changes := .Changed.Objects -}}\n- {{ $resource.Kind }} {{ $resource.Name }}\n  Changes:\n{{- range $_, $change := $changes }}\n    - {{ $change.OldValue }} -> {{ $change.NewValue }}\n{{ end -}}\n{{ end -}}\n";
    assert_eq!(
        render(source),
        "Automated image update\n\nAutomation name: flux-system/auto\n\nFiles:\n- a.yaml\n- b.yaml\nObjects:\n- Deployment api\n  Changes:\n    - x:1 -> x:2\n- Deployment web\n  Changes:\n    - 1 -> 2\n"
    );
}

#[test]
fn conditions_functions_and_values() {
    let cases = [
        ("{{ .Values.cluster }}/{{ .Values.missing }}|", "prod/|"),
        ("{{ index .Values \"cluster\" }}", "prod"),
        (
            "{{ if eq .Values.cluster \"dev\" }}d{{ else if eq .Values.cluster \"prod\" }}p{{ else }}o{{ end }}",
            "p",
        ),
        ("{{ if and (eq 1 1) (not false) }}yes{{ end }}", "yes"),
        (
            "{{ if or .Values.missing \"\" }}x{{ else }}none{{ end }}",
            "none",
        ),
        (
            "{{ len .Changed.Changes }} {{ printf \"%d change(s) in %s: %q\" (len .Changed.Changes) .AutomationObject .Values.cluster }}",
            "2 2 change(s) in flux-system/auto: \"prod\"",
        ),
        (
            "{{ range $i, $c := .Changed.Changes }}{{ $i }}={{ $c.Setter }};{{ end }}",
            "0=flux-system:x;1=flux-system:y:tag;",
        ),
        (
            "{{ range .Changed.FileChanges.nope }}x{{ else }}empty{{ end }}",
            "empty",
        ),
        (
            "{{ with .AutomationObject }}{{ .Name }} in {{ .Namespace }}{{ end }}",
            "auto in flux-system",
        ),
        ("{{ with .Values.missing }}x{{ else }}no{{ end }}", "no"),
        (
            "{{ .AutomationObject.Name | upper }} {{ \"A-B\" | lower | replace \"-\" \"_\" }}",
            "AUTO a_b",
        ),
        (
            "{{ print 1 2 \"a\" 3 }}|{{ println \"a\" 1 }}",
            "1 2a3|a 1\n",
        ),
        ("a  {{- /* a comment */ -}}  b {{- \" c\" }}", "ab c"),
        (
            "{{ range $c := .Changed.Changes }}{{ if hasPrefix \"x\" $c.NewValue }}{{ $c.NewValue }}{{ end }}{{ end }}",
            "x:2",
        ),
        (
            "{{ $.Values.cluster }}{{ range .Changed.Changes }}{{ $.Values.cluster }}{{ end }}",
            "prodprodprod",
        ),
    ];
    for (source, want) in cases {
        assert_eq!(render(source), want, "{source}");
    }
}

#[test]
fn unsupported_constructs_are_named_with_their_place() {
    let cases = [
        (
            "{{ define \"x\" }}{{ end }}",
            "line 1, column 4: {{define}} is not supported",
        ),
        (
            "ok\n  {{ template \"x\" }}",
            "line 2, column 6: {{template}} is not supported",
        ),
        (
            "{{ $x := 1 }}",
            "variable declarations and assignments are only supported in range",
        ),
        ("{{ .A | title }}", "function \"title\" is not supported"),
        ("{{ range .Changed.Changes }}", "{{range}} has no {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ .A ", "unclosed action"),
        ("{{ 1.5 }}", "only decimal integer literals"),
        (
            "{{ (index .Changed.Changes 0).OldValue }}",
            "a field of a parenthesized pipeline is not supported",
        ),
    ];
    for (source, want) in cases {
        let e = parse_error(source);
        assert!(e.contains(want), "{source:?}: {e}");
    }
    let at_render = [
        (
            "{{ .Changed }}",
            "printing a whole update.ResultV2 is not supported",
        ),
        (
            "{{ .Values }}",
            "printing a whole map[string]string is not supported",
        ),
        ("{{ .Changed.Changes }}", "printing a whole slice"),
        (
            "{{ .Updated.Images }}",
            "can't evaluate field Updated in type TemplateData (fields: AutomationObject, Changed, Values)",
        ),
        ("{{ printf \"%x\" 1 }}", "printf verb %x is not supported"),
        ("{{ printf \"%s %s\" \"a\" }}", "printf %s has no argument"),
        (
            "{{ eq .Values.cluster 1 }}",
            "incompatible types for comparison",
        ),
        (
            "{{ range .AutomationObject.Name }}{{ end }}",
            "range over a string is not supported",
        ),
        ("{{ $nope }}", "undefined variable $nope"),
    ];
    for (source, want) in at_render {
        let e = render_error(source);
        assert!(e.contains(want), "{source:?}: {e}");
    }
}

#[test]
fn struct_keys_sort_field_by_field() {
    let k = |a: &str, b: &str| {
        Value::Struct(Struct {
            type_name: "k",
            fields: vec![("A", Value::str(a)), ("B", Value::str(b))],
            display: None,
        })
    };
    let map = Map::new(
        "m",
        vec![
            (k("b", "a"), Value::Int(3)),
            (k("a", "b"), Value::Int(2)),
            (k("a", "a"), Value::Int(1)),
        ],
        Value::Int(0),
    );
    let order: Vec<&Value> = map.entries.iter().map(|(_, v)| v).collect();
    assert_eq!(order, [&Value::Int(1), &Value::Int(2), &Value::Int(3)]);
}
