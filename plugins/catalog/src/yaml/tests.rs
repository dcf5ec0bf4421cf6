use super::*;

/// `(JSON text, yaml.stringify(JSON.parse(text)))`. The expected strings were produced by
/// `yaml@2.9.1` `stringify` with default options, on Node.js 20.
const CASES: &[(&str, &str)] = &[
    (
        r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"test","annotations":{}},"spec":{"type":"service","lifecycle":"production","owner":"default/owner"}}"#,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: test\n  annotations: {}\nspec:\n  type: service\n  lifecycle: production\n  owner: default/owner\n",
    ),
    (r#"{}"#, "{}\n"),
    (
        r#"{"a":{},"b":[],"c":[{}],"d":[[]]}"#,
        "a: {}\nb: []\nc:\n  - {}\nd:\n  - []\n",
    ),
    (
        r#"{"a":[1,[2,3],{"b":4,"c":[5]},[],[[6]]]}"#,
        "a:\n  - 1\n  - - 2\n    - 3\n  - b: 4\n    c:\n      - 5\n  - []\n  - - - 6\n",
    ),
    (
        r#"{"a":[{"b":{"c":[{"d":"e","f":"g"}]}}]}"#,
        "a:\n  - b:\n      c:\n        - d: e\n          f: g\n",
    ),
    (
        r#"{"b":1,"2":2,"a":3,"1":4,"01":5,"4294967295":6,"4294967294":7}"#,
        "\"1\": 4\n\"2\": 2\n\"4294967294\": 7\nb: 1\na: 3\n\"01\": 5\n\"4294967295\": 6\n",
    ),
    (r#"{"a":1,"b":2,"a":3}"#, "a: 3\nb: 2\n"),
    (
        r#"{"n":null,"t":true,"f":false}"#,
        "n: null\nt: true\nf: false\n",
    ),
    (
        r#"{"a":0,"b":-0,"c":1.5,"d":-1,"e":100,"f":0.1,"g":1e21,"h":1e-7,"i":0.000001,"j":123456789012345678901234,"k":9007199254740993,"l":1.0}"#,
        "a: 0\nb: -0\nc: 1.5\nd: -1\ne: 100\nf: 0.1\ng: 1e+21\nh: 1e-7\ni: 0.000001\nj: 1.2345678901234569e+23\nk: 9007199254740992\nl: 1\n",
    ),
    (r#"{"a":""}"#, "a: \"\"\n"),
    (r#"{"a":"true"}"#, "a: \"true\"\n"),
    (r#"{"a":"True"}"#, "a: \"True\"\n"),
    (r#"{"a":"TRUE"}"#, "a: \"TRUE\"\n"),
    (r#"{"a":"false"}"#, "a: \"false\"\n"),
    (r#"{"a":"null"}"#, "a: \"null\"\n"),
    (r#"{"a":"Null"}"#, "a: \"Null\"\n"),
    (r#"{"a":"NULL"}"#, "a: \"NULL\"\n"),
    (r#"{"a":"~"}"#, "a: \"~\"\n"),
    (r#"{"a":"1"}"#, "a: \"1\"\n"),
    (r#"{"a":"-1"}"#, "a: \"-1\"\n"),
    (r#"{"a":"+1"}"#, "a: \"+1\"\n"),
    (r#"{"a":"007"}"#, "a: \"007\"\n"),
    (r#"{"a":"1.5"}"#, "a: \"1.5\"\n"),
    (r#"{"a":".5"}"#, "a: \".5\"\n"),
    (r#"{"a":"1."}"#, "a: \"1.\"\n"),
    (r#"{"a":"-.5"}"#, "a: \"-.5\"\n"),
    (r#"{"a":"1e3"}"#, "a: \"1e3\"\n"),
    (r#"{"a":"1E-3"}"#, "a: \"1E-3\"\n"),
    (r#"{"a":".5e+2"}"#, "a: \".5e+2\"\n"),
    (r#"{"a":"0x1F"}"#, "a: \"0x1F\"\n"),
    (r#"{"a":"0o17"}"#, "a: \"0o17\"\n"),
    (r#"{"a":".inf"}"#, "a: \".inf\"\n"),
    (r#"{"a":"-.Inf"}"#, "a: \"-.Inf\"\n"),
    (r#"{"a":"+.INF"}"#, "a: \"+.INF\"\n"),
    (r#"{"a":".nan"}"#, "a: \".nan\"\n"),
    (r#"{"a":".NaN"}"#, "a: \".NaN\"\n"),
    (r#"{"a":"yes"}"#, "a: yes\n"),
    (r#"{"a":"no"}"#, "a: no\n"),
    (r#"{"a":"on"}"#, "a: on\n"),
    (r#"{"a":"off"}"#, "a: off\n"),
    (r#"{"a":"y"}"#, "a: y\n"),
    (r#"{"a":"0b101"}"#, "a: 0b101\n"),
    (r#"{"a":"1_000"}"#, "a: 1_000\n"),
    (r#"{"a":"0X1F"}"#, "a: 0X1F\n"),
    (r#"{"a":"0o8"}"#, "a: 0o8\n"),
    (r#"{"a":"1.2.3"}"#, "a: 1.2.3\n"),
    (r#"{"a":"1e"}"#, "a: 1e\n"),
    (r#"{"a":"e3"}"#, "a: e3\n"),
    (r#"{"a":"."}"#, "a: .\n"),
    (r#"{"a":".."}"#, "a: ..\n"),
    (r#"{"a":"nan"}"#, "a: nan\n"),
    (r#"{"a":"inf"}"#, "a: inf\n"),
    (r#"{"a":"0x"}"#, "a: 0x\n"),
    (r#"{"a":"null!"}"#, "a: null!\n"),
    (r#"{"a":"a~"}"#, "a: a~\n"),
    (r#"{"a":"-"}"#, "a: \"-\"\n"),
    (r#"{"a":"?"}"#, "a: \"?\"\n"),
    (r#"{"a":":"}"#, "a: \":\"\n"),
    (r#"{"a":"- a"}"#, "a: \"- a\"\n"),
    (r#"{"a":"? a"}"#, "a: \"? a\"\n"),
    (r#"{"a":"-a"}"#, "a: -a\n"),
    (r#"{"a":"?a"}"#, "a: ?a\n"),
    (r#"{"a":"a:"}"#, "a: \"a:\"\n"),
    (r#"{"a":"a: b"}"#, "a: \"a: b\"\n"),
    (r#"{"a":"a:b"}"#, "a: a:b\n"),
    (r#"{"a":"a :b"}"#, "a: a :b\n"),
    (r#"{"a":"a #b"}"#, "a: \"a #b\"\n"),
    (r#"{"a":"a#b"}"#, "a: a#b\n"),
    (r##"{"a":"#a"}"##, "a: \"#a\"\n"),
    (r#"{"a":"&a"}"#, "a: \"&a\"\n"),
    (r#"{"a":"*a"}"#, "a: \"*a\"\n"),
    (r#"{"a":"!a"}"#, "a: \"!a\"\n"),
    (r#"{"a":"|a"}"#, "a: \"|a\"\n"),
    (r#"{"a":">a"}"#, "a: \">a\"\n"),
    (r#"{"a":"'a"}"#, "a: \"'a\"\n"),
    (r#"{"a":"\"a"}"#, "a: '\"a'\n"),
    (r#"{"a":"%a"}"#, "a: \"%a\"\n"),
    (r#"{"a":"@a"}"#, "a: \"@a\"\n"),
    (r#"{"a":"`a"}"#, "a: \"`a\"\n"),
    (r#"{"a":",a"}"#, "a: \",a\"\n"),
    (r#"{"a":"[a"}"#, "a: \"[a\"\n"),
    (r#"{"a":"]a"}"#, "a: \"]a\"\n"),
    (r#"{"a":"{a"}"#, "a: \"{a\"\n"),
    (r#"{"a":"}a"}"#, "a: \"}a\"\n"),
    (r#"{"a":"a,b"}"#, "a: a,b\n"),
    (r#"{"a":"a[b]{c}"}"#, "a: a[b]{c}\n"),
    (
        r#"{"a":"http://example.com:8080/a#b"}"#,
        "a: http://example.com:8080/a#b\n",
    ),
    (r#"{"a":" a"}"#, "a: \" a\"\n"),
    (r#"{"a":"a "}"#, "a: \"a \"\n"),
    (r#"{"a":"\ta"}"#, "a: \"\\ta\"\n"),
    (r#"{"a":"a\t"}"#, "a: \"a\\t\"\n"),
    (r#"{"a":"a - b"}"#, "a: a - b\n"),
    (r#"{"a":"a\t#b"}"#, "a: \"a\\t#b\"\n"),
    (r#"{"a":"it's"}"#, "a: it's\n"),
    (r#"{"a":"say \"hi\""}"#, "a: say \"hi\"\n"),
    (r#"{"a":"\"hi\" there"}"#, "a: '\"hi\" there'\n"),
    (r#"{"a":"'hi' there"}"#, "a: \"'hi' there\"\n"),
    (r#"{"a":"\"a\" 'b'"}"#, "a: \"\\\"a\\\" 'b'\"\n"),
    (r#"{"a":" \"a\""}"#, "a: ' \"a\"'\n"),
    (r#"{"a":" 'a'"}"#, "a: \" 'a'\"\n"),
    (r#"{"a":" \"a\" 'b'"}"#, "a: \" \\\"a\\\" 'b'\"\n"),
    (
        r#"{"---":"---","...":"...","%x":"%x","--- a":"--- a","a":{"---":"--- a","...":1}}"#,
        "\"---\": ---\n\"...\": ...\n\"%x\": \"%x\"\n\"--- a\": --- a\na:\n  ---: --- a\n  ...: 1\n",
    ),
    (r#"{"a":"\u0007"}"#, "a: \"\\a\"\n"),
    (r#"{"a":"\u0000"}"#, "a: \"\\0\"\n"),
    (r#"{"a":"\u001b"}"#, "a: \"\\e\"\n"),
    (r#"{"a":"\u000b"}"#, "a: \"\\v\"\n"),
    (r#"{"a":"\r"}"#, "a: \"\\r\"\n"),
    (r#"{"a":"a\rb"}"#, "a: \"a\\rb\"\n"),
    (r#"{"a":"\u007f"}"#, "a: \"\u{7f}\"\n"),
    (r#"{"a":"\u0085"}"#, "a: \"\u{85}\"\n"),
    (r#"{"a":"\u00a0"}"#, "a: \u{a0}\n"),
    (r#"{"a":"\u2028"}"#, "a: \u{2028}\n"),
    (r#"{"a":"a\u2029b"}"#, "a: a\u{2029}b\n"),
    (r#"{"a":"\b\f"}"#, "a: \"\\b\\f\"\n"),
    (r#"{"a":"\t"}"#, "a: \"\\t\"\n"),
    (r#"{"a":"a\tb"}"#, "a: a\tb\n"),
    (r#"{"a":"\u0001\u0002"}"#, "a: \"\\x01\\x02\"\n"),
    (r#"{"a":"a\\b"}"#, "a: a\\b\n"),
    (r#"{"a":"é"}"#, "a: é\n"),
    (r#"{"a":"😀"}"#, "a: 😀\n"),
    (r#"{"a":"Grüße, 世界"}"#, "a: Grüße, 世界\n"),
    (r#"{"a":"a\nb"}"#, "a: |-\n  a\n  b\n"),
    (r#"{"a":"a\nb\n"}"#, "a: |\n  a\n  b\n"),
    (r#"{"a":"a\nb\n\n"}"#, "a: |+\n  a\n  b\n\n"),
    (r#"{"a":"a\n\nb"}"#, "a: |-\n  a\n\n  b\n"),
    (r#"{"a":"\na"}"#, "a: |-\n  \n  a\n"),
    (r#"{"a":"\n\na"}"#, "a: |-\n  \n\n  a\n"),
    (r#"{"a":" a\nb"}"#, "a: |2-\n   a\n  b\n"),
    (r#"{"a":"  a\n b"}"#, "a: |2-\n    a\n   b\n"),
    (r#"{"a":"a\n b"}"#, "a: |-\n  a\n   b\n"),
    (r#"{"a":"a\n\tb"}"#, "a: |-\n  a\n  \tb\n"),
    (r#"{"a":"a\n "}"#, "a: \"a\\n \"\n"),
    (r#"{"a":"a\n\t"}"#, "a: \"a\\n\\t\"\n"),
    (r#"{"a":"\n"}"#, "a: |+\n  \n"),
    (r#"{"a":"\n\n"}"#, "a: |+\n  \n\n"),
    (r#"{"a":" \n"}"#, "a: |+\n   \n"),
    (r#"{"a":"a \nb"}"#, "a: |-\n  a \n  b\n"),
    (r#"{"a":"a\n#b"}"#, "a: |-\n  a\n  #b\n"),
    (r#"{"a":"a\n- b"}"#, "a: |-\n  a\n  - b\n"),
    (r#"{"a":"---\na"}"#, "a: |-\n  ---\n  a\n"),
    (r#"{"a":"a\n---"}"#, "a: |-\n  a\n  ---\n"),
    (r#"{"a":"a\n..."}"#, "a: |-\n  a\n  ...\n"),
    (r##"{"a":"#a\nb"}"##, "a: |-\n  #a\n  b\n"),
    (r#"{"a":"a: b\nc"}"#, "a: |-\n  a: b\n  c\n"),
    (r#"{"a":"\"a\"\n'b'"}"#, "a: |-\n  \"a\"\n  'b'\n"),
    (r#"{"a":"a\u0007\nb"}"#, "a: \"a\\a\\nb\"\n"),
    (
        r#"{"key\nwith break":"a","a":["x\ny","x\ny\n"],"b":{"c":"one\ntwo\n"}}"#,
        "\"key\\nwith break\": a\na:\n  - |-\n    x\n    y\n  - |\n    x\n    y\nb:\n  c: |\n    one\n    two\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter The quick brown fox jumps over the lazy dog\n  and keeps running far beyond the eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        "a: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    ),
    (
        r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        "a: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    ),
    (
        r#"{"a":"short xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        "a: short\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    ),
    (
        r#"{"a":"The  quick  brown  fox  jumps  over  the  lazy  dog  and  keeps  running  far  beyond  the  eighty  column  limit  of  the  emitter"}"#,
        "a: The  quick  brown  fox  jumps  over  the  lazy  dog  and  keeps  running  far  beyond  the  eighty  column  limit  of  the  emitter\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter #"}"#,
        "a: \"The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter #\"\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter: x"}"#,
        "a: \"The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter: x\"\n",
    ),
    (
        r#"{"a":"\"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\""}"#,
        "a: '\"The quick brown fox jumps over the lazy dog and keeps running far beyond\n  the eighty column limit of the emitter\"'\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: >-\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n"}"#,
        "a: >\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n\n\n"}"#,
        "a: >+\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n  indented The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nback"}"#,
        "a: >-\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n    indented The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n  back\n",
    ),
    (
        r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: |-\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        "a: |-\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    ),
    (
        r#"{"a":" The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: >2-\n   The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":"line one with a break in it that is long enough\nsecond"}"#,
        "a: |-\n  line one with a break in it that is long enough\n  second\n",
    ),
    (
        r#"{"a":"a \u0007 The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: \"a \\a The quick brown fox jumps over the lazy dog and keeps running far\n  beyond the eighty column limit of the emitter\"\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over\u0007\n\n the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: \"The quick brown fox jumps over\\a\n\n\n  \\ the lazy dog and keeps running far beyond the eighty column limit of the\n  emitter\"\n",
    ),
    (
        r#"{"a":"The quick brown fox jumps over the lazy  \n dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "a: |-\n  The quick brown fox jumps over the lazy  \n   dog and keeps running far beyond the eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u0007yyyyyyyyyyyyyyyyyyyy"}"#,
        "a: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\\n  \\ayyyyyyyyyyyyyyyyyyyy\"\n",
    ),
    (
        r#"{"a":"😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"}"#,
        "a: 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀\n",
    ),
    (
        r#"{"a":"😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 "}"#,
        "a: \"😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀\n  😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 \"\n",
    ),
    (
        r#"{"a":["The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter",{"b":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}]}"#,
        "a:\n  - The quick brown fox jumps over the lazy dog and keeps running far beyond the\n    eighty column limit of the emitter\n  - b: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n      eighty column limit of the emitter\n",
    ),
    (
        r#"{"a":{"b":{"c":{"d":{"e":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}}}}}"#,
        "a:\n  b:\n    c:\n      d:\n        e: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n          eighty column limit of the emitter\n",
    ),
    (
        r#"{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"value after a long key"}"#,
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: value after a long key\n",
    ),
    (
        r#"{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk:\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
    ),
    (
        r#"{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: The quick brown fox jumps over the\n  lazy dog and keeps running far beyond the eighty column limit of the emitter\n",
    ),
    (
        r#"{"true":1,"null":2,"":3,"-":4,"a b":5,"a: b":6,"a#b":7,"a #b":8," a":9,"'":10,"\"":11,"?":12,"é":13,"1.5":14,"~":15}"#,
        "\"true\": 1\n\"null\": 2\n\"\": 3\n\"-\": 4\na b: 5\n\"a: b\": 6\na#b: 7\n\"a #b\": 8\n\" a\": 9\n\"'\": 10\n'\"': 11\n\"?\": 12\né: 13\n\"1.5\": 14\n\"~\": 15\n",
    ),
    (
        r#"{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":"one\ntwo"}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"#,
        "k:\n  k:\n    k:\n      k:\n        k:\n          k:\n            k:\n              k:\n                k:\n                  k:\n                    k:\n                      k:\n                        k:\n                          k:\n                            k:\n                              k:\n                                k:\n                                  k:\n                                    k:\n                                      k:\n                                        k:\n                                          k:\n                                            k:\n                                              k:\n                                                k:\n                                                  k:\n                                                    k:\n                                                      k:\n                                                        k:\n                                                          k:\n                                                            k:\n                                                              k: |-\n                                                                one\n                                                                two\n",
    ),
    (
        r#"{"a":[[[[[[[[[[[["The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"]]]]]]]]]]]]}"#,
        "a:\n  - - - - - - - - - - - - The quick brown fox jumps over the lazy dog and keeps\n                          running far beyond the eighty column limit of the\n                          emitter\n",
    ),
];

#[test]
fn output_matches_yaml_2_9_1() {
    let mismatches: Vec<String> = CASES
        .iter()
        .filter_map(|(json, expected)| {
            let object: Map<String, Value> = serde_json::from_str(json).unwrap();
            let actual = stringify(&object);
            (actual != *expected)
                .then(|| format!("{json}\n  expected {expected:?}\n  actual   {actual:?}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn keys_over_1024_characters_are_explicit_keys() {
    // From `yaml@2.9.1`, as above, with the key written as <K>.
    let cases = [
        (1030, "\"v\"", "? <K>\n: v\n"),
        (1030, r#"{"b":1,"c":[2]}"#, "? <K>\n: b: 1\n  c:\n    - 2\n"),
        (1030, "[]", "? <K>\n: []\n"),
        (1020, "\"v\"", "<K>: v\n"),
    ];
    for (length, value, expected) in cases {
        let key = "k".repeat(length);
        let object: Map<String, Value> =
            serde_json::from_str(&format!(r#"{{"{key}":{value}}}"#)).unwrap();
        assert_eq!(
            stringify(&object),
            expected.replace("<K>", &key),
            "{length} {value}"
        );
    }
}
