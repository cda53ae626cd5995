// The AWS SDK for JavaScript v3 against a Coffre gateway, at the SDK's defaults (CRC32
// request checksums, aws-chunked trailers for streams, response checksum validation).
// Driven by tests/clients/test_js_sdk.py: settings come from the environment, every step is
// checked here and the outcome goes to stdout as one JSON document, so that pytest can say
// which step failed and show the HTTP exchanges that led to it.
//
// Environment: COFFRE_JS_MODULES (the directory npm ci installed into), S3_ENDPOINT,
// S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET, S3_VERSIONED_BUCKET.

import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";

// The SDK lives outside the repository (npm ci into an ignored directory): resolve it there.
const require = createRequire(join(process.env.COFFRE_JS_MODULES, "package.json"));
const s3sdk = require("@aws-sdk/client-s3");
const { Upload } = require("@aws-sdk/lib-storage");
const { getSignedUrl } = require("@aws-sdk/s3-request-presigner");

const MIB = 1024 * 1024;
const BUCKET = process.env.S3_BUCKET;
const VBUCKET = process.env.S3_VERSIONED_BUCKET;
// The exchanges kept for a failure report: enough to see the request that failed and the
// one before it.
const WIRE_KEEP = 6;

const wire = [];
// What a step found that is worth saying when it passes (what the SDK did, say).
let notes = [];

function note(text) {
  notes.push(text);
}

function clientWith(settings = {}) {
  const client = new s3sdk.S3Client({
    endpoint: process.env.S3_ENDPOINT,
    region: process.env.S3_REGION,
    forcePathStyle: true,
    credentials: {
      accessKeyId: process.env.S3_ACCESS_KEY,
      secretAccessKey: process.env.S3_SECRET_KEY,
    },
    // One attempt: a retry would hide the first answer, the one under test.
    maxAttempts: 1,
    ...settings,
  });
  // After signing, before the answer is parsed: the request as it goes on the wire and the
  // answer's status and headers as they came back.
  client.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request;
      const seen = {
        request: `${req.method} ${req.path}${query(req.query)}`,
        requestHeaders: { ...req.headers },
      };
      wire.push(seen);
      if (wire.length > WIRE_KEEP) wire.shift();
      const out = await next(args);
      seen.status = out.response.statusCode;
      seen.responseHeaders = { ...out.response.headers };
      return out;
    },
    { step: "deserialize", name: "coffreWireLog", priority: "low" },
  );
  return client;
}

function query(q) {
  const parts = Object.entries(q ?? {}).map(([k, v]) => (v === null ? k : `${k}=${v}`));
  return parts.length ? `?${parts.join("&")}` : "";
}

const s3 = clientWith();

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function equalBytes(a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

function md5Hex(data) {
  return createHash("md5").update(data).digest("hex");
}

function crc32B64(data) {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(data) >>> 0);
  return out.toString("base64");
}

function lastRequest(method, pathEnd) {
  for (let i = wire.length - 1; i >= 0; i--) {
    const [m, p] = wire[i].request.split(" ");
    if (m === method && p.split("?")[0].endsWith(pathEnd)) return wire[i];
  }
  throw new Error(`no ${method} ${pathEnd} on the wire`);
}

function chunks(data, size) {
  // A stream whose length the SDK cannot know in advance.
  return Readable.from((function* () {
    for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
  })());
}

async function expectError(promise, name, status) {
  try {
    await promise;
  } catch (err) {
    check(err.name === name, `error name ${err.name} === ${name} (${err.message})`);
    check(err.$metadata?.httpStatusCode === status,
      `$metadata.httpStatusCode ${err.$metadata?.httpStatusCode} === ${status}`);
    check(err.$fault === "client", `$fault ${err.$fault} === client`);
    return err;
  }
  throw new Error(`expected ${name}, the call succeeded`);
}

const small = Buffer.from("hello from the JS SDK\n");
const buffer = randomBytes(300 * 1024);
const streamed = randomBytes(3 * MIB + 123);
const big = randomBytes(20 * MIB + 1000);

const steps = [
  ["CreateBucket", async () => {
    const out = await s3.send(new s3sdk.CreateBucketCommand({ Bucket: BUCKET }));
    check(out.$metadata.httpStatusCode === 200, "status 200");
    await s3.send(new s3sdk.CreateBucketCommand({ Bucket: VBUCKET }));
    const all = await s3.send(new s3sdk.ListBucketsCommand({}));
    const names = all.Buckets.map((b) => b.Name);
    check(names.includes(BUCKET) && names.includes(VBUCKET), `ListBuckets ${names}`);
    await s3.send(new s3sdk.HeadBucketCommand({ Bucket: BUCKET }));
  }],

  ["PutObject string", async () => {
    const out = await s3.send(new s3sdk.PutObjectCommand({
      Bucket: BUCKET, Key: "docs/hello.txt", Body: small.toString(),
      ContentType: "text/plain", Metadata: { origin: "js-sdk", "two-words": "a b" },
    }));
    check(out.ETag === `"${md5Hex(small)}"`, `ETag ${out.ETag}`);
    // The default: CRC32 computed by the SDK, sent as a header for a body it holds.
    const sent = lastRequest("PUT", "/docs/hello.txt").requestHeaders;
    check(sent["x-amz-checksum-crc32"] === crc32B64(small), "CRC32 header sent");
    check(out.ChecksumCRC32 === crc32B64(small), `ChecksumCRC32 ${out.ChecksumCRC32}`);
  }],

  ["PutObject Buffer", async () => {
    const out = await s3.send(new s3sdk.PutObjectCommand({
      Bucket: BUCKET, Key: "data/buffer.bin", Body: buffer,
    }));
    check(out.ETag === `"${md5Hex(buffer)}"`, `ETag ${out.ETag}`);
    check(out.ChecksumCRC32 === crc32B64(buffer), `ChecksumCRC32 ${out.ChecksumCRC32}`);
  }],

  ["PutObject stream (aws-chunked, CRC32 trailer)", async () => {
    const out = await s3.send(new s3sdk.PutObjectCommand({
      Bucket: BUCKET, Key: "data/stream.bin", Body: chunks(streamed, 64 * 1024),
      ContentLength: streamed.length,
    }));
    const sent = lastRequest("PUT", "/data/stream.bin").requestHeaders;
    check(sent["content-encoding"] === "aws-chunked", `content-encoding ${sent["content-encoding"]}`);
    check(sent["x-amz-trailer"] === "x-amz-checksum-crc32", `x-amz-trailer ${sent["x-amz-trailer"]}`);
    check(out.ETag === `"${md5Hex(streamed)}"`, `ETag ${out.ETag}`);
    check(out.ChecksumCRC32 === crc32B64(streamed), `ChecksumCRC32 ${out.ChecksumCRC32}`);
  }],

  ["PutObject stream of unknown length", async () => {
    // The SDK does not allow it: it puts the body's length in x-amz-decoded-content-length
    // and, with no length, fails before a byte is sent (lib-storage's Upload is its way).
    // Had it sent the request, AWS would answer 411 MissingContentLength.
    try {
      await s3.send(new s3sdk.PutObjectCommand({
        Bucket: BUCKET, Key: "data/unknown.bin", Body: chunks(small, 5),
      }));
    } catch (err) {
      const status = err.$metadata?.httpStatusCode;
      if (status === undefined) return note(`refused by the SDK: ${err.name}: ${err.message}`);
      check(status === 411 && err.name === "MissingContentLength", `${status} ${err.name}`);
      return note("sent; 411 MissingContentLength");
    }
    const back = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "data/unknown.bin" }));
    check(equalBytes(await back.Body.transformToByteArray(), small), "body identical");
    return note("sent and stored");
  }],

  ["PutObject with other checksums", async () => {
    for (const algo of ["CRC32C", "SHA1", "SHA256"]) {
      const key = `sums/${algo}.bin`;
      const out = await s3.send(new s3sdk.PutObjectCommand({
        Bucket: BUCKET, Key: key, Body: buffer, ChecksumAlgorithm: algo,
      }));
      check(out[`Checksum${algo}`], `${algo} echoed`);
      const got = await s3.send(new s3sdk.GetObjectCommand({
        Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED",
      }));
      check(got[`Checksum${algo}`] === out[`Checksum${algo}`], `${algo} on GET`);
      check(equalBytes(await got.Body.transformToByteArray(), buffer), `${algo} body`);
    }
  }],

  ["GetObject byte-identical, checksum validated", async () => {
    for (const [key, data] of [["docs/hello.txt", small], ["data/buffer.bin", buffer],
      ["data/stream.bin", streamed]]) {
      const out = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: key }));
      // responseChecksumValidation WHEN_SUPPORTED: the SDK asked for the checksum and
      // checks the body against it while reading.
      const sent = lastRequest("GET", key).requestHeaders;
      check(sent["x-amz-checksum-mode"] === "ENABLED", "x-amz-checksum-mode sent");
      check(out.ChecksumCRC32 === crc32B64(data), `${key}: ChecksumCRC32 ${out.ChecksumCRC32}`);
      check(out.ContentLength === data.length, `${key}: ContentLength ${out.ContentLength}`);
      check(equalBytes(await out.Body.transformToByteArray(), data), `${key}: body identical`);
    }
    const text = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "docs/hello.txt" }));
    check(await text.Body.transformToString() === small.toString(), "transformToString");
  }],

  ["GetObject ranged", async () => {
    const out = await s3.send(new s3sdk.GetObjectCommand({
      Bucket: BUCKET, Key: "data/buffer.bin", Range: "bytes=1000-1999",
    }));
    check(out.$metadata.httpStatusCode === 206, `status ${out.$metadata.httpStatusCode}`);
    check(out.ContentRange === `bytes 1000-1999/${buffer.length}`, `ContentRange ${out.ContentRange}`);
    check(out.ContentLength === 1000, `ContentLength ${out.ContentLength}`);
    check(equalBytes(await out.Body.transformToByteArray(), buffer.subarray(1000, 2000)), "range body");
    const tail = await s3.send(new s3sdk.GetObjectCommand({
      Bucket: BUCKET, Key: "data/buffer.bin", Range: "bytes=-10",
    }));
    check(equalBytes(await tail.Body.transformToByteArray(), buffer.subarray(-10)), "suffix body");
    await expectError(s3.send(new s3sdk.GetObjectCommand({
      Bucket: BUCKET, Key: "docs/hello.txt", Range: "bytes=1000-2000",
    })), "InvalidRange", 416);
  }],

  ["HeadObject metadata", async () => {
    const out = await s3.send(new s3sdk.HeadObjectCommand({ Bucket: BUCKET, Key: "docs/hello.txt" }));
    check(out.ContentType === "text/plain", `ContentType ${out.ContentType}`);
    check(out.ContentLength === small.length, `ContentLength ${out.ContentLength}`);
    check(out.Metadata.origin === "js-sdk" && out.Metadata["two-words"] === "a b",
      `Metadata ${JSON.stringify(out.Metadata)}`);
    check(out.ETag === `"${md5Hex(small)}"`, `ETag ${out.ETag}`);
    check(out.LastModified instanceof Date && !isNaN(out.LastModified), "LastModified a Date");
    check(Math.abs(out.LastModified - Date.now()) < 5 * 60 * 1000, "LastModified recent");
    const sums = await s3.send(new s3sdk.HeadObjectCommand({
      Bucket: BUCKET, Key: "docs/hello.txt", ChecksumMode: "ENABLED",
    }));
    check(sums.ChecksumCRC32 === crc32B64(small), `HEAD ChecksumCRC32 ${sums.ChecksumCRC32}`);
  }],

  ["ListObjectsV2 paginated and with delimiter", async () => {
    const keys = Array.from({ length: 23 }, (_, i) => `list/${i < 10 ? "a" : "b"}/k${String(i).padStart(2, "0")}`);
    await Promise.all(keys.map((Key) => s3.send(new s3sdk.PutObjectCommand({
      Bucket: BUCKET, Key, Body: Key,
    }))));
    const seen = [];
    let pages = 0;
    for await (const page of s3sdk.paginateListObjectsV2({ client: s3, pageSize: 5 },
      { Bucket: BUCKET, Prefix: "list/" })) {
      pages += 1;
      check(page.KeyCount === (page.Contents ?? []).length, `KeyCount ${page.KeyCount}`);
      seen.push(...(page.Contents ?? []).map((o) => o.Key));
    }
    check(JSON.stringify(seen) === JSON.stringify(keys), `keys ${seen}`);
    check(pages === 5, `pages ${pages}`);
    const delim = await s3.send(new s3sdk.ListObjectsV2Command({
      Bucket: BUCKET, Prefix: "list/", Delimiter: "/",
    }));
    const prefixes = (delim.CommonPrefixes ?? []).map((p) => p.Prefix);
    check(JSON.stringify(prefixes) === JSON.stringify(["list/a/", "list/b/"]), `CommonPrefixes ${prefixes}`);
    check((delim.Contents ?? []).length === 0, "no Contents at the delimiter level");
    const top = await s3.send(new s3sdk.ListObjectsV2Command({ Bucket: BUCKET, Delimiter: "/" }));
    check(top.CommonPrefixes.map((p) => p.Prefix).includes("docs/"), "docs/ at the top");
    const first = top.Contents?.[0];
    check(first === undefined || first.LastModified instanceof Date, "LastModified a Date");
    const one = await s3.send(new s3sdk.ListObjectsV2Command({
      Bucket: BUCKET, Prefix: "docs/hello", FetchOwner: true,
    }));
    const obj = one.Contents[0];
    check(obj.Size === small.length && obj.ETag === `"${md5Hex(small)}"`, "Size and ETag listed");
    check(obj.Owner?.ID, "Owner with FetchOwner");
  }],

  ["keys that need escaping", async () => {
    const keys = ["a b+c.txt", "per%cent", "!'()*", "~tilde", "eq=amp&q?hash#", "ünï/😀.bin",
      "semi;colon,comma:colon@at$dollar", "dir//double//slash", "/leading", "tab\tand\nnewline"];
    for (const Key of keys) {
      await s3.send(new s3sdk.PutObjectCommand({ Bucket: BUCKET, Key: `esc/${Key}`, Body: Key }));
      const got = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: `esc/${Key}` }));
      check(await got.Body.transformToString() === Key, `body of ${JSON.stringify(Key)}`);
    }
    const listed = await s3.send(new s3sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: "esc/" }));
    const names = listed.Contents.map((o) => o.Key.slice(4)).sort();
    check(JSON.stringify(names) === JSON.stringify([...keys].sort()), `listed ${JSON.stringify(names)}`);
    const url = await s3.send(new s3sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: "esc/", EncodingType: "url" }));
    // The SDK hands the keys over as they came, encoded; an application decodes them.
    const decoded = url.Contents.map((o) => decodeURIComponent(o.Key.replace(/\+/g, " ")).slice(4)).sort();
    check(JSON.stringify(decoded) === JSON.stringify([...keys].sort()), `url-encoded listing ${JSON.stringify(decoded)}`);
    await s3.send(new s3sdk.CopyObjectCommand({
      Bucket: BUCKET, Key: "esc/copied", CopySource: `${BUCKET}/esc/${encodeURIComponent(keys[4])}`,
    }));
    const out = await s3.send(new s3sdk.DeleteObjectsCommand({
      Bucket: BUCKET, Delete: { Objects: keys.map((Key) => ({ Key: `esc/${Key}` })) },
    }));
    check((out.Deleted ?? []).length === keys.length, `Deleted ${JSON.stringify(out.Errors)}`);
  }],

  ["CopyObject", async () => {
    const key = "copies/ünïcode and spaces.txt";
    const out = await s3.send(new s3sdk.CopyObjectCommand({
      Bucket: BUCKET, Key: key, CopySource: `${BUCKET}/docs/hello.txt`,
    }));
    check(out.CopyObjectResult.ETag === `"${md5Hex(small)}"`, `ETag ${out.CopyObjectResult.ETag}`);
    const back = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: key }));
    check(equalBytes(await back.Body.transformToByteArray(), small), "copy body");
    check(back.Metadata.origin === "js-sdk", "metadata copied");
    await s3.send(new s3sdk.CopyObjectCommand({
      Bucket: BUCKET, Key: "copies/replaced.txt",
      CopySource: encodeURIComponent(`${BUCKET}/${key}`),
      MetadataDirective: "REPLACE", Metadata: { fresh: "yes" }, ContentType: "text/x-new",
    }));
    const head = await s3.send(new s3sdk.HeadObjectCommand({ Bucket: BUCKET, Key: "copies/replaced.txt" }));
    check(head.Metadata.fresh === "yes" && head.Metadata.origin === undefined, "metadata replaced");
    check(head.ContentType === "text/x-new", `ContentType ${head.ContentType}`);
  }],

  ["DeleteObjects", async () => {
    const doomed = ["list/a/k00", "list/a/k01", "never/was"];
    const out = await s3.send(new s3sdk.DeleteObjectsCommand({
      Bucket: BUCKET, Delete: { Objects: doomed.map((Key) => ({ Key })) },
    }));
    const deleted = (out.Deleted ?? []).map((d) => d.Key).sort();
    check(JSON.stringify(deleted) === JSON.stringify([...doomed].sort()), `Deleted ${deleted}`);
    check((out.Errors ?? []).length === 0, `Errors ${JSON.stringify(out.Errors)}`);
    const quiet = await s3.send(new s3sdk.DeleteObjectsCommand({
      Bucket: BUCKET, Delete: { Objects: [{ Key: "list/a/k02" }], Quiet: true },
    }));
    check((quiet.Deleted ?? []).length === 0, "Quiet lists nothing");
    const left = await s3.send(new s3sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: "list/a/" }));
    check(left.KeyCount === 7, `KeyCount after delete ${left.KeyCount}`);
  }],

  ["lib-storage Upload, 20 MiB in 5 MiB parts", async () => {
    const upload = new Upload({
      client: s3, partSize: 5 * MIB, queueSize: 2,
      params: { Bucket: BUCKET, Key: "big/upload.bin", Body: big, ContentType: "application/x-big" },
    });
    const out = await upload.done();
    check(out.ETag.endsWith('-5"'), `ETag ${out.ETag}`);
    const back = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "big/upload.bin" }));
    check(back.ContentType === "application/x-big", `ContentType ${back.ContentType}`);
    // Each part went up with its CRC32: the object's is the CRC32 of theirs, "-5".
    const partSums = [];
    for (let at = 0; at < big.length; at += 5 * MIB) {
      partSums.push(Buffer.from(crc32B64(big.subarray(at, at + 5 * MIB)), "base64"));
    }
    const composite = `${crc32B64(Buffer.concat(partSums))}-5`;
    check(back.ChecksumCRC32 === composite && back.ChecksumType === "COMPOSITE",
      `ChecksumCRC32 ${back.ChecksumCRC32} ${back.ChecksumType}, expected ${composite}`);
    check(equalBytes(await back.Body.transformToByteArray(), big), "body identical");
    const part = await s3.send(new s3sdk.GetObjectCommand({
      Bucket: BUCKET, Key: "big/upload.bin", PartNumber: 2,
    }));
    check(part.ContentLength === 5 * MIB && part.PartsCount === 5, `part 2: ${part.ContentLength}, ${part.PartsCount}`);
    check(equalBytes(await part.Body.transformToByteArray(), big.subarray(5 * MIB, 10 * MIB)), "part 2 body");
  }],

  ["lib-storage Upload of a stream of unknown length", async () => {
    const data = big.subarray(0, 11 * MIB);
    const upload = new Upload({
      client: s3, partSize: 5 * MIB,
      params: { Bucket: BUCKET, Key: "big/stream.bin", Body: chunks(data, 256 * 1024) },
    });
    const out = await upload.done();
    check(out.ETag.endsWith('-3"'), `ETag ${out.ETag}`);
    const back = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "big/stream.bin" }));
    check(equalBytes(await back.Body.transformToByteArray(), data), "body identical");
    // A small stream goes up in one PutObject.
    const one = new Upload({ client: s3, params: { Bucket: BUCKET, Key: "big/small.bin", Body: chunks(small, 4) } });
    await one.done();
    const got = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "big/small.bin" }));
    check(equalBytes(await got.Body.transformToByteArray(), small), "small stream body");
  }],

  ["presigned GET and PUT with fetch", async () => {
    const getUrl = await getSignedUrl(s3, new s3sdk.GetObjectCommand({
      Bucket: BUCKET, Key: "docs/hello.txt",
    }), { expiresIn: 300 });
    const got = await fetch(getUrl);
    check(got.status === 200, `GET status ${got.status}`);
    check(equalBytes(new Uint8Array(await got.arrayBuffer()), small), "presigned GET body");
    // A portal's download link: the file name and type set in the URL.
    const named = await fetch(await getSignedUrl(s3, new s3sdk.GetObjectCommand({
      Bucket: BUCKET, Key: "docs/hello.txt", ResponseContentType: "text/csv",
      ResponseContentDisposition: 'attachment; filename="hello.csv"',
    }), { expiresIn: 300 }));
    check(named.status === 200 && named.headers.get("content-type") === "text/csv" &&
      named.headers.get("content-disposition") === 'attachment; filename="hello.csv"',
      `overrides: ${named.status} ${named.headers.get("content-disposition")}`);
    await named.arrayBuffer();
    const putUrl = await getSignedUrl(s3, new s3sdk.PutObjectCommand({
      Bucket: BUCKET, Key: "presigned/put.bin", ContentType: "application/octet-stream",
    }), { expiresIn: 300 });
    note(`PUT URL query: ${[...new URL(putUrl).searchParams.keys()].join(",")}`);
    const put = await fetch(putUrl, {
      method: "PUT", body: buffer, headers: { "content-type": "application/octet-stream" },
    });
    check(put.status === 200, `PUT status ${put.status}: ${await put.text()}`);
    const back = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "presigned/put.bin" }));
    check(equalBytes(await back.Body.transformToByteArray(), buffer), "presigned PUT body");
    const late = await getSignedUrl(s3, new s3sdk.GetObjectCommand({
      Bucket: BUCKET, Key: "docs/hello.txt",
    }), { expiresIn: 1, signingDate: new Date(Date.now() - 60 * 1000) });
    const refused = await fetch(late);
    check(refused.status === 403, `expired URL status ${refused.status}`);
  }],

  ["tagging", async () => {
    await s3.send(new s3sdk.PutObjectCommand({
      Bucket: BUCKET, Key: "tags/x.txt", Body: "x", Tagging: "team=data&stage=raw",
    }));
    const got = await s3.send(new s3sdk.GetObjectTaggingCommand({ Bucket: BUCKET, Key: "tags/x.txt" }));
    const tags = Object.fromEntries(got.TagSet.map((t) => [t.Key, t.Value]));
    check(tags.team === "data" && tags.stage === "raw", `TagSet ${JSON.stringify(got.TagSet)}`);
    await s3.send(new s3sdk.PutObjectTaggingCommand({
      Bucket: BUCKET, Key: "tags/x.txt", Tagging: { TagSet: [{ Key: "stage", Value: "clean" }] },
    }));
    const obj = await s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "tags/x.txt" }));
    check(obj.TagCount === 1, `TagCount ${obj.TagCount}`);
    await obj.Body.transformToByteArray();
    await s3.send(new s3sdk.DeleteObjectTaggingCommand({ Bucket: BUCKET, Key: "tags/x.txt" }));
    const none = await s3.send(new s3sdk.GetObjectTaggingCommand({ Bucket: BUCKET, Key: "tags/x.txt" }));
    check(none.TagSet.length === 0, "tags deleted");
    await s3.send(new s3sdk.PutBucketTaggingCommand({
      Bucket: BUCKET, Tagging: { TagSet: [{ Key: "owner", Value: "portal" }] },
    }));
    const bt = await s3.send(new s3sdk.GetBucketTaggingCommand({ Bucket: BUCKET }));
    check(bt.TagSet[0]?.Key === "owner", "bucket tags");
  }],

  ["versioning and ListObjectVersions", async () => {
    await s3.send(new s3sdk.PutBucketVersioningCommand({
      Bucket: VBUCKET, VersioningConfiguration: { Status: "Enabled" },
    }));
    const state = await s3.send(new s3sdk.GetBucketVersioningCommand({ Bucket: VBUCKET }));
    check(state.Status === "Enabled", `Status ${state.Status}`);
    const v1 = await s3.send(new s3sdk.PutObjectCommand({ Bucket: VBUCKET, Key: "doc", Body: "one" }));
    const v2 = await s3.send(new s3sdk.PutObjectCommand({ Bucket: VBUCKET, Key: "doc", Body: "two" }));
    check(v1.VersionId && v2.VersionId && v1.VersionId !== v2.VersionId, "two version ids");
    const old = await s3.send(new s3sdk.GetObjectCommand({ Bucket: VBUCKET, Key: "doc", VersionId: v1.VersionId }));
    check(await old.Body.transformToString() === "one", "old version readable");
    check(old.VersionId === v1.VersionId, "VersionId on GET");
    const del = await s3.send(new s3sdk.DeleteObjectCommand({ Bucket: VBUCKET, Key: "doc" }));
    check(del.DeleteMarker === true && del.VersionId, `DeleteMarker ${del.DeleteMarker}`);
    const err = await expectError(s3.send(new s3sdk.GetObjectCommand({ Bucket: VBUCKET, Key: "doc" })),
      "NoSuchKey", 404);
    check(err.$response?.headers?.["x-amz-delete-marker"] === "true", "x-amz-delete-marker on 404");
    const listed = await s3.send(new s3sdk.ListObjectVersionsCommand({ Bucket: VBUCKET }));
    const versions = (listed.Versions ?? []).map((v) => [v.VersionId, v.IsLatest]);
    check(JSON.stringify(versions) === JSON.stringify([[v2.VersionId, false], [v1.VersionId, false]]),
      `Versions ${JSON.stringify(versions)}`);
    const dms = (listed.DeleteMarkers ?? []).map((m) => [m.VersionId, m.IsLatest]);
    check(JSON.stringify(dms) === JSON.stringify([[del.VersionId, true]]), `DeleteMarkers ${JSON.stringify(dms)}`);
    // The SDK has no paginator for ListObjectVersions: pages by hand, one entry each.
    const all = [];
    let markers = {};
    for (let page = 0; page < 10; page++) {
      const out = await s3.send(new s3sdk.ListObjectVersionsCommand({ Bucket: VBUCKET, MaxKeys: 1, ...markers }));
      all.push(...(out.Versions ?? []), ...(out.DeleteMarkers ?? []));
      if (!out.IsTruncated) break;
      markers = { KeyMarker: out.NextKeyMarker, VersionIdMarker: out.NextVersionIdMarker };
    }
    check(JSON.stringify(all.map((v) => v.VersionId)) === JSON.stringify([del.VersionId, v2.VersionId, v1.VersionId]),
      `paged versions ${all.map((v) => v.VersionId)}`);
    await s3.send(new s3sdk.DeleteObjectCommand({ Bucket: VBUCKET, Key: "doc", VersionId: del.VersionId }));
    const back = await s3.send(new s3sdk.GetObjectCommand({ Bucket: VBUCKET, Key: "doc" }));
    check(await back.Body.transformToString() === "two", "marker removed, v2 current");
  }],

  ["errors", async () => {
    const nsk = await expectError(s3.send(new s3sdk.GetObjectCommand({ Bucket: BUCKET, Key: "no/such/key" })),
      "NoSuchKey", 404);
    check(nsk instanceof s3sdk.NoSuchKey, "instanceof NoSuchKey");
    check(nsk.$metadata.requestId, "requestId");
    const nsb = await expectError(s3.send(new s3sdk.GetObjectCommand({ Bucket: "no-such-bucket-js", Key: "k" })),
      "NoSuchBucket", 404);
    check(nsb instanceof s3sdk.NoSuchBucket, "instanceof NoSuchBucket");
    await expectError(s3.send(new s3sdk.ListObjectsV2Command({ Bucket: "no-such-bucket-js" })),
      "NoSuchBucket", 404);
    const head = await expectError(s3.send(new s3sdk.HeadObjectCommand({ Bucket: BUCKET, Key: "no/such/key" })),
      "NotFound", 404);
    check(head instanceof s3sdk.NotFound, "instanceof NotFound");
    await expectError(s3.send(new s3sdk.HeadBucketCommand({ Bucket: "no-such-bucket-js" })), "NotFound", 404);
    await expectError(s3.send(new s3sdk.DeleteBucketCommand({ Bucket: BUCKET })), "BucketNotEmpty", 409);
    // AWS answers 200 to re-creating one's own bucket in us-east-1 (legacy), 409 elsewhere.
    const again = s3.send(new s3sdk.CreateBucketCommand({ Bucket: BUCKET }));
    if (process.env.S3_REGION === "us-east-1") await again;
    else await expectError(again, "BucketAlreadyOwnedByYou", 409);
    const wrong = clientWith({ credentials: { accessKeyId: process.env.S3_ACCESS_KEY, secretAccessKey: "wrong" } });
    await expectError(wrong.send(new s3sdk.ListObjectsV2Command({ Bucket: BUCKET })),
      "SignatureDoesNotMatch", 403);
  }],
];

const report = {
  sdk: require("@aws-sdk/client-s3/package.json").version,
  node: process.version,
  steps: [],
};
for (const [name, run] of steps) {
  const started = Date.now();
  notes = [];
  try {
    await run();
    report.steps.push({ name, ok: true, ms: Date.now() - started, notes });
  } catch (err) {
    report.steps.push({
      name, ok: false, ms: Date.now() - started,
      error: `${err.name}: ${err.message}`,
      status: err.$metadata?.httpStatusCode,
      stack: err.stack?.split("\n").slice(0, 6).join("\n"),
      wire: wire.slice(-3),
    });
  }
}
process.stdout.write(JSON.stringify(report));
