// Delivery path templates (dex-pipeline.md §4.4), including the original's TestGetDeliveredFilename cases (§9.4).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BadIngestTimestampError, compileTemplate, deliveredPath, goExt, TemplateError } from '../../internal/delivery/path-template.js';

const ID = '0b7c3c2e-5a8f-4d7e-9a11-2f3b4c5d6e7f';
const at = (t: string, extra: Record<string, string> = {}) => ({ dex_ingest_datetime: t, filename: 'test.txt', ...extra });

describe('delivery path templates', () => {
  it('the original test: routine-immunization-zip/{{.Year}}/{{.Month}}/{{.Day}}/{{.Filename}} on 2020-04-11', () => {
    const t = compileTemplate('routine-immunization-zip/{{.Year}}/{{.Month}}/{{.Day}}/{{.Filename}}');
    assert.equal(deliveredPath(ID, t, at('2020-04-11T15:12:30.00000005Z')), 'routine-immunization-zip/2020/04/11/test.txt');
  });

  it('a bogus or missing dex_ingest_datetime is "bad ingest timestamp"', () => {
    const t = compileTemplate('{{.Year}}/{{.Filename}}');
    assert.throws(() => deliveredPath(ID, t, at('bogus time')), (e: Error) => e instanceof BadIngestTimestampError && /^bad ingest timestamp/.test(e.message));
    assert.throws(() => deliveredPath(ID, t, { filename: 'test.txt' }), BadIngestTimestampError);
  });

  it('renders every field; the extension is appended at the end whatever the template', () => {
    const m = at('2024-12-06T05:38:06.12Z', { data_stream_id: 'dextesting', data_stream_route: 'testevent1' });
    assert.equal(deliveredPath(ID, compileTemplate('{{.UploadId}}'), m), `${ID}.txt`);
    assert.equal(deliveredPath(ID, compileTemplate('{{.Filename}}_{{.UploadId}}'), m), `test_${ID}.txt`);
    assert.equal(deliveredPath(ID, compileTemplate(''), m), '2024/12/06/test.txt', 'empty = the default template');
    assert.equal(deliveredPath(ID, compileTemplate('{{ .DataStreamID }}/{{.DataStreamRoute}}/{{.Hour}}/{{.Prefix}}{{.Filename}}{{.Suffix}}'), m), 'dextesting/testevent1/05/test.txt');
    assert.equal(deliveredPath(ID, compileTemplate('{{.Year}}/{{.Month}}/{{.Day}}/{{.Filename}}_{{.UploadId}}'), m), `2024/12/06/test_${ID}.txt`);
  });

  it('date parts come from the timestamp in its own offset', () => {
    assert.equal(deliveredPath(ID, compileTemplate('{{.Year}}-{{.Month}}-{{.Day}}T{{.Hour}}'), at('2023-01-31T23:59:59+05:00')), '2023-01-31T23.txt');
  });

  it('the file name is the first present of filename, original_filename, meta_ext_filename, received_filename (present but empty wins)', () => {
    const t = compileTemplate('{{.Filename}}');
    const ts = '2024-01-01T00:00:00Z';
    assert.equal(deliveredPath(ID, t, { dex_ingest_datetime: ts, received_filename: 'r.csv', meta_ext_filename: 'm.hl7' }), 'm.hl7');
    assert.equal(deliveredPath(ID, compileTemplate('{{.UploadId}}'), { dex_ingest_datetime: ts, filename: '', received_filename: 'r.csv' }), ID);
  });

  it("uses Go's filepath.Ext", () => {
    assert.equal(goExt('a.tar.gz'), '.gz');
    assert.equal(goExt('.bashrc'), '.bashrc');
    assert.equal(goExt('noext'), '');
    assert.equal(goExt('dir.d/noext'), '');
  });

  it('an unknown field or bad syntax is refused when the template is compiled', () => {
    for (const bad of ['{{.Nope}}', '{{.Year}', '{{Year}}', '{{.Year | printf}}', 'x}}', '{{}}']) {
      assert.throws(() => compileTemplate(bad), TemplateError, bad);
    }
  });

  it('a rendered path can never leave its target', () => {
    const ts = '2024-01-01T00:00:00Z';
    for (const filename of ['../../etc/passwd', '..', '/abs/file.txt', 'a\0b.txt']) {
      assert.throws(() => deliveredPath(ID, compileTemplate('{{.Filename}}'), { dex_ingest_datetime: ts, filename }), TemplateError, filename);
    }
    assert.throws(() => deliveredPath(ID, compileTemplate('{{.DataStreamID}}/{{.UploadId}}'), { dex_ingest_datetime: ts, data_stream_id: '..' }), TemplateError);
    assert.equal(deliveredPath(ID, compileTemplate('{{.Filename}}'), { dex_ingest_datetime: ts, filename: 'file..name.txt' }), 'file..name.txt');
  });
});
