#!/usr/bin/env node
// kafkajs driver: `node kjs.js '<json args>'`, one JSON event per line on stdout; kafkajs's
// own log goes to stderr. The operations and events are those of ../drivers/common.py.
//
// kafkajs 2.2.4 speaks v0-1 of the transactional APIs, so a fenced producer sees
// INVALID_PRODUCER_EPOCH (47); it has no entry for PRODUCER_FENCED (90). It has no manual
// partition assignment: `assign` is served by a subscription under a fresh group with the
// records of unlisted partitions dropped. Only gzip compression is built in.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const readline = require('readline')
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')

const SENTINEL = '__sentinel__'
const TIMEOUT = 30000

function emit (event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}

function debugEnabled () {
  const v = process.env.EOSLOG_CLIENT_DEBUG || ''
  return v !== '' && v !== '0'
}

const logCreator = () => ({ namespace, label, log }) => {
  process.stderr.write(JSON.stringify({ level: label, namespace, ...log }) + '\n')
}

function makeKafka (args) {
  return new Kafka({
    clientId: 'eoslog-kjs',
    brokers: [args.bootstrap],
    logLevel: debugEnabled() ? logLevel.DEBUG : logLevel.WARN,
    logCreator,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 10 },
    ...(args.consumer_conf || {})
  })
}

// The innermost Kafka error of a kafkajs error chain (`cause` links).
function protocolError (e) {
  let cur = e
  for (let i = 0; cur && i < 10; i++) {
    if (cur.type && typeof cur.code === 'number') return cur
    cur = cur.cause || cur.originalError
  }
  return null
}

function errorEvent (e, during) {
  const pe = protocolError(e)
  let kind = 'other'
  let code = null
  let type = null
  if (pe) {
    code = pe.code
    type = pe.type
    if (type === 'INVALID_PRODUCER_EPOCH' || type === 'PRODUCER_FENCED' || code === 47 || code === 90) kind = 'fenced'
    else if (code === 50) kind = 'invalid_txn_timeout'
  } else if (e && /timeout/i.test(e.name || '')) {
    kind = 'timeout'
  }
  emit('error', {
    kind,
    code,
    type,
    name: (e && e.name) || 'Error',
    message: String((e && e.message) || e),
    fatal: kind === 'fenced',
    during
  })
}

function transactionsOf (args) {
  const txns = args.transactions || [{ records: args.records || [], end: args.end || 'commit', offsets: args.offsets }]
  return txns.map(t => ({
    end: t.end || 'commit',
    offsets: t.offsets,
    records: (t.records || []).map(r => ({ ...r, topic: r.topic || args.topic }))
  }))
}

function compressionOf (args) {
  const c = args.compression || 'none'
  if (c === 'none') return CompressionTypes.None
  if (c === 'gzip') return CompressionTypes.GZIP
  throw new Error('kafkajs has no built-in codec for ' + c)
}

function toMessage (r) {
  const m = { key: r.key === undefined ? null : r.key, value: r.value === undefined ? null : r.value }
  if (r.partition !== undefined && r.partition !== null) m.partition = r.partition
  return m
}

// Sends the records (one send per topic) and prints `delivered` events. kafkajs reports one
// base offset per partition, so a record's offset is that plus its index in the partition.
async function sendRecords (sender, records, compression) {
  const byTopic = new Map()
  for (const r of records) {
    if (!byTopic.has(r.topic)) byTopic.set(r.topic, [])
    byTopic.get(r.topic).push(r)
  }
  let n = 0
  for (const [topic, recs] of byTopic) {
    const res = await sender.send({ topic, messages: recs.map(toMessage), compression, acks: -1 })
    const base = new Map(res.map(x => [x.partition, BigInt(x.baseOffset)]))
    const idx = new Map()
    for (const r of recs) {
      if (r.partition === undefined || r.partition === null) {
        n++
        continue
      }
      const i = idx.get(r.partition) || 0n
      idx.set(r.partition, i + 1n)
      const b = base.get(r.partition)
      emit('delivered', { topic, partition: r.partition, offset: b === undefined ? null : Number(b + i), key: r.key === undefined ? null : r.key, value: r.value })
      n++
    }
  }
  return n
}

function offsetsArg (o) {
  const topics = new Map()
  for (const [t, p, off] of o.offsets) {
    if (!topics.has(t)) topics.set(t, [])
    topics.get(t).push({ partition: p, offset: String(off) })
  }
  return { consumerGroupId: o.group, topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) }
}

function makeProducer (kafka, args) {
  const conf = { allowAutoTopicCreation: true }
  if (args.transactional_id) {
    conf.transactionalId = args.transactional_id
    conf.transactionTimeout = args.txn_timeout_ms || 10000
    conf.idempotent = true
    conf.maxInFlightRequests = 1
  } else {
    conf.idempotent = true
    conf.maxInFlightRequests = 1
  }
  return kafka.producer(conf)
}

async function opProduce (args) {
  const kafka = makeKafka(args)
  const producer = makeProducer(kafka, args)
  const compression = compressionOf(args)
  const transactional = Boolean(args.transactional_id)
  let during = 'connect'
  let delivered = 0
  try {
    await producer.connect() // runs InitProducerId
    emit('ready')
    const txns = transactionsOf(args)
    for (let i = 0; i < txns.length; i++) {
      const t = txns[i]
      if (transactional && t.end !== 'none') {
        during = 'transaction'
        const txn = await producer.transaction()
        emit('txn_begun', { i })
        during = 'send'
        delivered += await sendRecords(txn, t.records, compression)
        if (t.offsets) {
          during = 'sendOffsets'
          await txn.sendOffsets(offsetsArg(t.offsets))
        }
        if (t.end === 'commit') {
          during = 'commit'
          await txn.commit()
        } else {
          during = 'abort'
          await txn.abort()
        }
      } else {
        during = 'send'
        delivered += await sendRecords(producer, t.records, compression)
      }
      emit('txn_end', { i, end: t.end })
    }
    await producer.disconnect()
  } catch (e) {
    errorEvent(e, during)
    return 1
  }
  emit('done', { delivered })
  return 0
}

function stdinLines () {
  const rl = readline.createInterface({ input: process.stdin })
  const lines = []
  const waiters = []
  let eof = false
  rl.on('line', l => {
    const w = waiters.shift()
    if (w) w(l.trim())
    else lines.push(l.trim())
  })
  rl.on('close', () => {
    eof = true
    while (waiters.length) waiters.shift()(null)
  })
  return {
    next: () => new Promise(resolve => {
      if (lines.length) resolve(lines.shift())
      else if (eof) resolve(null)
      else waiters.push(resolve)
    }),
    hasStop: () => eof || lines.includes('stop')
  }
}

async function opTxnOpenAndHang (args) {
  const cmds = stdinLines()
  const kafka = makeKafka(args)
  const producer = makeProducer(kafka, args)
  let during = 'connect'
  let txn
  try {
    await producer.connect()
    during = 'transaction'
    txn = await producer.transaction()
    during = 'send'
    const n = await sendRecords(txn, transactionsOf(args)[0].records, CompressionTypes.None)
    if (args.offsets) {
      during = 'sendOffsets'
      await txn.sendOffsets(offsetsArg(args.offsets))
    }
    emit('open', { delivered: n })
  } catch (e) {
    errorEvent(e, during)
    return 1
  }
  const cmd = await cmds.next()
  if (cmd === null) process.exit(0)
  during = cmd
  try {
    const after = (args.records_after || []).map(r => ({ ...r, topic: r.topic || args.topic }))
    if (cmd === 'produce_commit' || cmd === 'produce') await sendRecords(txn, after, CompressionTypes.None)
    if (cmd === 'commit' || cmd === 'produce_commit') await txn.commit()
    else if (cmd === 'abort') await txn.abort()
    emit('result', { cmd, ok: true })
  } catch (e) {
    errorEvent(e, during)
    return 1
  }
  return 0
}

class Stopper {
  constructor (args) {
    this.expect = args.expect === undefined ? null : args.expect
    this.sentinelsGiven = Boolean(args.until_sentinels && args.until_sentinels.length)
    this.sentinels = new Set((args.until_sentinels || []).map(([t, p]) => t + '\u0000' + p))
    this.idleMs = args.idle_ms === undefined ? null : args.idle_ms
    this.maxMs = args.max_ms || 30000
    if (this.expect === null && !this.sentinelsGiven && this.idleMs === null) this.idleMs = 3000
    this.start = Date.now()
    this.last = null
    this.count = 0
    this.total = 0
  }

  assigned () { if (this.last === null) this.last = Date.now() }

  record (topic, partition, offset, key, value) {
    const sentinel = value !== null && value.startsWith(SENTINEL)
    emit('record', { topic, partition, offset, key, value, sentinel })
    this.last = Date.now()
    this.total++
    if (sentinel) this.sentinels.delete(topic + '\u0000' + partition)
    else this.count++
  }

  reason () {
    const now = Date.now()
    const sentinelsLeft = this.sentinels.size > 0
    if (this.expect !== null && this.count >= this.expect && !sentinelsLeft) return 'expect'
    if (this.expect === null && this.sentinelsGiven && !sentinelsLeft) return 'sentinels'
    if (this.idleMs !== null && this.last !== null && now - this.last >= this.idleMs &&
        (this.expect === null || this.count >= this.expect) && !sentinelsLeft) return 'idle'
    if (now - this.start >= this.maxMs) return 'max_ms'
    return null
  }

  done (reason) {
    emit('done', { count: this.count, total: this.total, reason, timed_out: reason === 'max_ms' })
  }
}

function str (b) { return b === null || b === undefined ? null : b.toString('utf8') }

function makeConsumer (kafka, args, groupId, isolation) {
  return kafka.consumer({
    groupId,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    rebalanceTimeout: 10000,
    maxWaitTimeInMs: 100,
    readUncommitted: isolation === 'read_uncommitted',
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 10 },
    ...(args.consumer_conf || {})
  })
}

async function opConsume (args) {
  const kafka = makeKafka(args)
  const iso = args.isolation || 'read_committed'
  const group = args.group || ('kjs-consume-' + Math.random().toString(16).slice(2, 10))
  const consumer = makeConsumer(kafka, args, group, iso)
  const stop = new Stopper(args)
  let wanted = null
  let topics = args.topics
  if (args.assign) {
    wanted = new Set(args.assign.map(([t, p]) => t + '\u0000' + p))
    topics = [...new Set(args.assign.map(([t]) => t))]
  }
  consumer.on(consumer.events.GROUP_JOIN, e => {
    const parts = []
    for (const [t, ps] of Object.entries(e.payload.memberAssignment || {})) for (const p of ps) parts.push([t, p])
    emit('assigned', { partitions: parts })
    stop.assigned()
  })
  await consumer.connect()
  await consumer.subscribe({ topics, fromBeginning: (args.offset_reset || 'earliest') === 'earliest' })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      if (wanted && !wanted.has(topic + '\u0000' + partition)) return
      if (stop.reason() !== null) return
      stop.record(topic, partition, Number(message.offset), str(message.key), str(message.value))
    }
  })
  let reason = null
  while ((reason = stop.reason()) === null) await new Promise(resolve => setTimeout(resolve, 50))
  await consumer.disconnect()
  stop.done(reason)
  return 0
}

// Joins a group with kafkajs's default assigner (RoundRobinAssigner) and reports how the
// join ended: `joined` with the assignment, or the error that crashed the consumer.
async function opJoin (args) {
  const kafka = makeKafka(args)
  const consumer = makeConsumer(kafka, args, args.group, 'read_committed')
  const ended = new Promise(resolve => {
    consumer.on(consumer.events.GROUP_JOIN, e => {
      const parts = []
      for (const [t, ps] of Object.entries(e.payload.memberAssignment || {})) for (const p of ps) parts.push([t, p])
      emit('joined', { partitions: parts })
      resolve(0)
    })
    consumer.on(consumer.events.CRASH, e => {
      errorEvent(e.payload.error, 'join')
      resolve(1)
    })
  })
  await consumer.connect()
  await consumer.subscribe({ topics: args.topics, fromBeginning: true })
  await consumer.run({ autoCommit: false, eachMessage: async () => {} })
  const rc = await ended
  await consumer.disconnect().catch(() => {})
  if (rc === 0) emit('done', {})
  return rc
}

function transform (topic, partition, offset, value) {
  return JSON.stringify({ src: [topic, partition, offset], v: value })
}

async function opPipeline (args) {
  const cmds = stdinLines()
  const kafka = makeKafka(args)
  const producer = makeProducer(kafka, args)
  const consumer = makeConsumer(kafka, args, args.group, 'read_committed')
  const k = args.commit_every || 10
  let committedRecords = 0
  let last = Date.now()
  let failed = null
  consumer.on(consumer.events.GROUP_JOIN, e => {
    const parts = []
    for (const [t, ps] of Object.entries(e.payload.memberAssignment || {})) for (const p of ps) parts.push([t, p])
    emit('assigned', { partitions: parts })
  })
  await producer.connect()
  await consumer.connect()
  await consumer.subscribe({ topics: args.input_topics, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      const msgs = batch.messages
      for (let i = 0; i < msgs.length; i += k) {
        if (!isRunning() || isStale()) break
        const chunk = msgs.slice(i, i + k)
        const next = (BigInt(chunk[chunk.length - 1].offset) + 1n).toString()
        const txn = await producer.transaction()
        try {
          await txn.send({
            topic: args.output_topic,
            messages: chunk.map(m => ({
              key: m.key,
              partition: batch.partition,
              value: transform(batch.topic, batch.partition, Number(m.offset), str(m.value))
            }))
          })
          await txn.sendOffsets({
            consumerGroupId: args.group,
            topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }]
          })
          await txn.commit()
        } catch (e) {
          const pe = protocolError(e)
          if (pe && (pe.code === 47 || pe.code === 90)) {
            failed = e
            throw e
          }
          try { await txn.abort() } catch (_) {}
          emit('aborted', { reason: String(e.message), records: chunk.length })
          throw e // kafkajs fetches the batch again from the last resolved offset
        }
        committedRecords += chunk.length
        emit('committed', { records: chunk.length, offsets: [[batch.topic, batch.partition, Number(next)]] })
        resolveOffset(chunk[chunk.length - 1].offset)
        last = Date.now()
        await heartbeat()
      }
    }
  })
  const start = Date.now()
  for (;;) {
    if (failed) break
    if (cmds.hasStop()) break
    if (args.max_ms && Date.now() - start > args.max_ms) break
    if (args.idle_ms && Date.now() - last > args.idle_ms) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  await consumer.disconnect()
  await producer.disconnect()
  if (failed) {
    errorEvent(failed, 'pipeline')
    return 1
  }
  emit('done', { committed_records: committedRecords })
  return 0
}

async function opInfo (args) {
  const kafka = makeKafka(args)
  const admin = kafka.admin()
  await admin.connect()
  const cluster = await admin.describeCluster()
  emit('info', { client: 'kafkajs', version: require('kafkajs/package.json').version, node: process.version, brokers: cluster.brokers.map(b => [b.nodeId, b.host, b.port]) })
  await admin.disconnect()
  emit('done')
  return 0
}

const OPS = {
  produce: opProduce,
  consume: opConsume,
  txn_open_and_hang: opTxnOpenAndHang,
  pipeline: opPipeline,
  join: opJoin,
  info: opInfo
}

async function main () {
  if (process.argv.length !== 3) {
    process.stderr.write("usage: kjs.js '<json args>'\n")
    return 2
  }
  const args = JSON.parse(process.argv[2])
  const op = OPS[args.op]
  if (!op) {
    emit('error', { kind: 'unsupported', code: null, name: 'op', message: 'unsupported op ' + args.op, fatal: true, during: 'args' })
    return 2
  }
  return op(args)
}

main().then(
  rc => process.exit(rc),
  e => {
    errorEvent(e, 'main')
    process.exit(1)
  }
)
