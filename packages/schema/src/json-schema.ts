import * as events from './events.ts';
import * as payloads from './payloads.ts';
import { generateJsonSchema } from './shape.ts';
import { SCHEMA_VERSION } from './version.ts';

/** The published JSON Schema of trace events v1, generated from the shapes (never edited by hand). */
export function traceJsonSchema(): Record<string, unknown> {
  return generateJsonSchema(
    events.eventShape,
    {
      RunStarted: events.runStartedShape,
      StepStarted: events.stepStartedShape,
      StepFinished: events.stepFinishedShape,
      RunFinished: events.runFinishedShape,
      BlobRef: events.blobRefShape,
      BlobHash: events.blobHashShape,
      EventId: events.eventIdShape,
      Id: events.idShape,
      Time: events.timeShape,
      Label: events.labelShape,
      Attributes: events.attributesShape,
      ErrorInfo: events.errorInfoShape,
      ForkEdit: events.forkEditShape,
      StepKind: payloads.stepKindShape,
      Usage: payloads.usageShape,
      Message: payloads.messageShape,
      ToolCall: payloads.toolCallShape,
      ToolDefinition: payloads.toolDefinitionShape,
      ModelRequest: payloads.modelRequestShape,
      ModelResponse: payloads.modelResponseShape,
      RetrieverRequest: payloads.retrieverRequestShape,
      RetrieverResponse: payloads.retrieverResponseShape,
      Document: payloads.documentShape,
      ToolRequest: payloads.toolRequestShape,
      ToolResponse: payloads.toolResponseShape,
      ChainRequest: payloads.chainRequestShape,
      ChainResponse: payloads.chainResponseShape,
    },
    {
      id: `https://rewind.dev/schema/trace-v${SCHEMA_VERSION}.schema.json`,
      title: `Rewind trace event v${SCHEMA_VERSION}`,
      description:
        'One event of a Rewind trace. Generated from packages/schema/src (the source of truth) by `npm run gen`; do not edit by hand.',
    },
  );
}
