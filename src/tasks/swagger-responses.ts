import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';

/** A `text/plain` answer, as OpenHIM gives them. */
export function ApiTextResponse(status: number, description: string, example: string) {
  return ApiResponse({ status, description, content: { 'text/plain': { schema: { type: 'string', example } } } });
}

/** The error answers every task route may give. */
export function ApiTextErrors(...errors: Array<[number, string, string]>) {
  return applyDecorators(
    ...errors.map(([status, description, example]) => ApiTextResponse(status, description, example)),
  );
}
