import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';

const NAME_PART =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

function thrown(f: () => unknown): ApiError {
  try {
    f();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

describe('parseLabelSelector', () => {
  const web = { app: 'web', tier: 'front', 'app.kubernetes.io/name': 'berth', n: '5' };
  it.each([
    ['', {}, true],
    ['app=web', web, true],
    ['app==web', web, true],
    ['app=db', web, false],
    ['app!=db', web, true],
    ['app!=web', web, false],
    ['missing!=x', web, true],
    ['app in (db,web)', web, true],
    ['app in (db)', web, false],
    ['missing in (x)', web, false],
    ['app notin (db)', web, true],
    ['app notin (web,db)', web, false],
    ['missing notin (x)', web, true],
    ['app', web, true],
    ['missing', web, false],
    ['!missing', web, true],
    ['!app', web, false],
    ['app=web,tier=front', web, true],
    ['app=web,tier=back', web, false],
    ['  app = web ,  tier  in  ( front , back )  ', web, true],
    ['app.kubernetes.io/name=berth', web, true],
    ['app.kubernetes.io/name in (x,berth),!gone', web, true],
    ['app=', { app: '' }, true],
    ['app=', web, false],
    ['app in (,web)', { app: '' }, true],
    ['n>4', web, true],
    ['n<5', web, false],
    ['app>4', web, false],
    ['in=x', { in: 'x' }, true],
    ['app=web', undefined, false],
    ['!app', undefined, true],
  ] as const)('%j on %j matches: %s', (sel, labels, want) => {
    expect(parseLabelSelector(sel).matches(labels)).toBe(want);
  });

  it('reports an empty selector as empty and a non-empty one as not', () => {
    expect(parseLabelSelector('').empty).toBe(true);
    expect(parseLabelSelector('   ').empty).toBe(true);
    expect(parseLabelSelector('a').empty).toBe(false);
  });

  it.each([
    ['b=2,a=1', 'a=1,b=2'],
    ['x in (c, a,b,a)', 'x in (a,b,c)'],
    ['x notin (b,a)', 'x notin (a,b)'],
    ['!x ,  y', '!x,y'],
    ['x==1', 'x==1'],
    ['x != 1', 'x!=1'],
    ['x>1', 'x>1'],
  ])('prints %j canonically as %j', (sel, want) => {
    expect(parseLabelSelector(sel).toString()).toBe(want);
  });

  it.each([
    ['-app=web', `unable to parse requirement: <nil>: Invalid value: "-app": ${NAME_PART}`],
    ['app=-web', `unable to parse requirement: values[0][app]: Invalid value: "-web": ${LABEL_VALUE}`],
    ['app in (ok,-no)', `unable to parse requirement: values[0][app]: Invalid value: "-no": ${LABEL_VALUE}`],
    ['example.com/=x', `unable to parse requirement: <nil>: Invalid value: "example.com/": name part must be non-empty; ${NAME_PART}`],
    ['Example_com/a=x', 'unable to parse requirement: <nil>: Invalid value: "Example_com/a": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character (e.g. \'example.com\', regex used for validation is \'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\')'],
    ['a/b/c', "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"],
    ['app=web value', "found 'value', expected: ',' or 'end of string'"],
    [',app', "found ',', expected: !, identifier, or 'end of string'"],
    ['app=web,', "found '', expected: identifier after ','"],
    ['app web', "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt"],
    ['app in web', "unable to parse requirement: found 'web' expected: '('"],
    ['app in (a', "unable to parse requirement: found '', expected: ',' or ')'"],
    ['app in (a b)', "unable to parse requirement: found 'b', expected: ',' or ')'"],
    ['app in ()x', "found 'x', expected: ',' or 'end of string'"],
    ['app==(x)', "unable to parse requirement: found '(', expected: identifier"],
    ['!app=x', "found '=', expected: ',' or 'end of string'"],
    ['!=x', "found '!=', expected: !, identifier, or 'end of string'"],
    ['!!x', "unable to parse requirement: found '!', expected: identifier"],
    ['n>x', 'unable to parse requirement: values[0]: Invalid value: "x": for \'Gt\', \'Lt\' operators, the value must be an integer'],
    [`k=${'v'.repeat(64)}`, `unable to parse requirement: values[0][k]: Invalid value: "${'v'.repeat(64)}": must be no more than 63 characters`],
  ])('rejects %j with 400 %j', (sel, message) => {
    const e = thrown(() => parseLabelSelector(sel));
    expect(e.code).toBe(400);
    expect(e.reason).toBe('BadRequest');
    expect(e.message).toBe(message);
  });
});

describe('parseFieldSelector', () => {
  const ctr = {
    metadata: { name: 'web', namespace: 'default' },
    spec: { nodeName: 'node-1', image: 'busybox', replicas: 3, tty: false },
    status: { phase: 'Running' },
  };
  const allowed = ['spec.nodeName', 'spec.image', 'status.phase', 'spec.replicas', 'spec.tty', 'spec.missing'];

  it.each([
    ['', true],
    ['metadata.name=web', true],
    ['metadata.name==web', true],
    ['metadata.name=db', false],
    ['metadata.name!=db', true],
    ['metadata.namespace=default', true],
    ['metadata.name=web,metadata.namespace=other', false],
    ['spec.nodeName=node-1,status.phase!=Exited', true],
    ['spec.missing=', true],
    ['spec.missing!=', false],
    ['spec.replicas=3', true],
    ['spec.tty=false', true],
    [' spec.image =busybox', true],
  ])('%j matches the container: %s', (sel, want) => {
    expect(parseFieldSelector(sel, allowed).matches(ctr)).toBe(want);
  });

  it('keeps the terms, sorted, with == written as =', () => {
    const s = parseFieldSelector('spec.nodeName==n1,metadata.name!=x', allowed);
    expect(s.empty).toBe(false);
    expect(s.requirements).toEqual([
      { field: 'metadata.name', op: '!=', value: 'x' },
      { field: 'spec.nodeName', op: '=', value: 'n1' },
    ]);
    expect(parseFieldSelector('', allowed).empty).toBe(true);
  });

  it.each([
    ['metadata.name=web', 'web'],
    ['metadata.name==web,spec.image=x', 'web'],
    ['metadata.name!=web', undefined],
    ['spec.image=x', undefined],
  ])('finds the exact name in %j: %j', (sel, want) => {
    expect(parseFieldSelector(sel, allowed).exactName()).toBe(want);
  });

  it.each([
    ['metadata.name=a\\,b', 'a,b'],
    ['metadata.name=a\\=b', 'a=b'],
    ['metadata.name=a\\\\b', 'a\\b'],
  ])('unescapes %j to %j', (sel, value) => {
    expect(parseFieldSelector(sel, []).requirements[0]!.value).toBe(value);
  });

  it.each([
    ['spec.colour=red', 'field label not supported: spec.colour'],
    ['status.phase=Running', 'field label not supported: status.phase'],
    ['metadata.name', "invalid selector: 'metadata.name'; can't understand 'metadata.name'"],
    ['metadata.name=a=b', 'invalid field selector: unescaped character in value: ='],
    ['metadata.name=a\\x', 'invalid field selector: invalid escape sequence: \\x'],
    ['metadata.name=a\\', 'invalid field selector: invalid escape sequence: \\'],
  ])('rejects %j with 400 %j', (sel, message) => {
    const e = thrown(() => parseFieldSelector(sel, ['spec.image']));
    expect(e.code).toBe(400);
    expect(e.message).toBe(message);
  });
});
