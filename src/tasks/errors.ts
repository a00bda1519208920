import { HttpException, HttpStatus } from '@nestjs/common';

// HttpException with a string body: the global filter sends it as text/plain, as OpenHIM does.
// (Nest's BadRequestException('...') and friends wrap the text in a JSON object instead.)
const text = (status: HttpStatus) => (message: string) => new HttpException(message, status);

export const badRequest = text(HttpStatus.BAD_REQUEST);
export const forbidden = text(HttpStatus.FORBIDDEN);
export const notFound = text(HttpStatus.NOT_FOUND);
export const conflict = text(HttpStatus.CONFLICT);
export const unsupportedMediaType = text(HttpStatus.UNSUPPORTED_MEDIA_TYPE);
export const serviceUnavailable = text(HttpStatus.SERVICE_UNAVAILABLE);
